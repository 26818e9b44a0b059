"""The MPT model: shapes, token layout, equivalence with the plain ViT, freezing, variants, weights."""

from __future__ import annotations

import pytest
import timm
import torch

from mpt_utils.model import (
    MPT,
    VARIANTS,
    VPT_PROMPTS,
    GroupAdapter,
    MotionPromptGenerator,
    PretrainedWeightsError,
    build_variant,
    count_macs,
    count_parameters,
    create_backbone,
)

SMALL = dict(backbone="vit_tiny_patch16_224", pretrained=False, img_size=32, num_frames=4,
             backbone_kwargs={"depth": 2}, num_classes=5)


def inputs(batch=2, size=32, frames=4):
    torch.manual_seed(0)
    return torch.rand(batch, 3, size, size), torch.rand(batch, frames, 3, size, size)


def plain_vit_features(model: MPT, dyn, tokens=None):
    """The frozen timm ViT's own blocks run on [CLS, (prompts), patches], independently of MPT's code."""
    bb = model.backbone
    x = bb._pos_embed(bb.patch_embed(model.normalise(dyn)))
    if tokens is not None:
        x = torch.cat([x[:, :1], tokens, x[:, 1:]], dim=1)
    for block in bb.blocks:
        x = block(x)
    return bb.norm(x)


def test_output_shapes_and_features():
    model = MPT(**SMALL)
    dyn, clip = inputs()
    tokens = model.forward_features(dyn, clip)
    logits, cls = model.forward_head(tokens), model.forward_head(tokens, pre_logits=True)
    assert logits.shape == (2, 5) and cls.shape == (2, model.backbone.embed_dim)
    torch.testing.assert_close(cls, tokens[:, 0])
    torch.testing.assert_close(model(dyn, clip), logits)  # forward = forward_head(forward_features(...))
    assert tokens.shape == (2, 1 + 5 + 4, model.backbone.embed_dim)  # CLS + K=5 + 2x2 patches


def test_prompts_sit_right_after_cls():
    model = MPT(**SMALL)
    dyn, clip = inputs()
    seq = model.embed(dyn, clip)
    prompts = model.generator(model.normalise(clip))
    torch.testing.assert_close(seq[:, 1:6], prompts)
    bb = model.backbone
    patches = bb._pos_embed(bb.patch_embed(model.normalise(dyn)))
    torch.testing.assert_close(seq[:, :1], patches[:, :1])
    torch.testing.assert_close(seq[:, 6:], patches[:, 1:])


def test_zero_adapters_and_no_prompts_equal_the_plain_vit():
    model = MPT(**{**SMALL, "num_prompts": 0})
    dyn, _ = inputs()
    torch.testing.assert_close(model.forward_features(dyn), plain_vit_features(model, dyn))


def test_the_private_pos_embed_call_agrees_with_timms_public_forward_features():
    """MPT.embed calls timm's private ``VisionTransformer._pos_embed``; timm is pinned (requirements/lock.txt) and
    this checks the call on the installed timm against its public ``forward_features``, which embeds, runs the
    blocks and norms: without prompts and with zero adapters, MPT's features must be timm's own, to the bit."""
    model = MPT(**{**SMALL, "num_prompts": 0}).eval()
    dyn, _ = inputs()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(dyn), model.backbone.forward_features(model.normalise(dyn)),
                                   rtol=0, atol=0)


def test_zero_adapters_with_prompts_equal_the_plain_blocks_on_the_same_sequence():
    model = MPT(**SMALL)
    dyn, clip = inputs()
    prompts = model.generator(model.normalise(clip))
    torch.testing.assert_close(model.forward_features(dyn, clip), plain_vit_features(model, dyn, prompts))


def test_training_changes_only_trainable_tensors():
    model = MPT(**SMALL)
    dyn, clip = inputs(4)
    before = {n: t.detach().clone() for n, t in model.state_dict().items()}
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(dyn, clip), torch.tensor([0, 1, 2, 3]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    changed = {n for n, t in model.state_dict().items() if not torch.equal(t, before[n])}
    assert changed <= trainable  # every tensor that changed is trainable
    frozen = [n for n in before if n.startswith("backbone.")]
    assert frozen and all(torch.equal(model.state_dict()[n], before[n]) for n in frozen)  # bit-identical
    assert {"head.weight", "head.bias"} <= changed
    ups = sorted(n for n in changed if n.endswith("up.weight"))
    # Every branch of block 0 moved. In the last block only the CLS output reaches the head, so its
    # motion and visual branches receive no gradient at all (the paper counts them all the same).
    assert ups == [f"blocks.0.adapter.branches.{b}.up.weight" for b in ("class", "motion", "visual")] + [
        "blocks.1.adapter.branches.class.up.weight"]
    assert any(n.startswith("generator.") for n in changed)


def test_gaussian_kernels_are_normalised_and_inside_the_clip():
    gen = MotionPromptGenerator(num_frames=8, num_prompts=5, embed_dim=16, channels=8, patch_size=8)
    with torch.no_grad():
        gen.to_mean.weight.normal_(std=5.0)  # push the means around
        clip = torch.randn(3, 8, 3, 32, 32) * 10
        tokens = gen(clip)
        means, widths, weights = gen.windows(clip)
    assert tokens.shape == (3, 5, 16)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    assert (means >= 0).all() and (means <= 7).all()
    assert (widths >= 0.5).all()
    torch.testing.assert_close(tokens, gen.project(weights @ gen.frame_features(clip)))  # eq. 12
    assert not any(name.startswith("last_") for name in vars(gen))  # forward stores nothing
    with pytest.raises(ValueError, match="frames"):
        gen(torch.randn(1, 6, 3, 32, 32))


def test_group_adapter_routes_each_group_through_its_branch():
    adapter = GroupAdapter(dim=8, reduction=2, num_prefix_tokens=1, num_prompts=2)
    for b in adapter.branches.values():
        torch.nn.init.normal_(b.up.weight)
    x = torch.randn(1, 6, 8)
    out = adapter(x)
    torch.testing.assert_close(out[:, :1], adapter.branches["class"](x[:, :1]))
    torch.testing.assert_close(out[:, 1:3], adapter.branches["motion"](x[:, 1:3]))
    torch.testing.assert_close(out[:, 3:], adapter.branches["visual"](x[:, 3:]))
    shared = GroupAdapter(dim=8, reduction=2, num_prompts=2, shared=True)
    assert list(shared.branches) == ["all"]
    averaged = GroupAdapter(dim=8, reduction=2, num_prompts=2, token_average=True)
    for b in averaged.branches.values():
        torch.nn.init.normal_(b.up.weight)
    v = x[:, 3:]
    torch.testing.assert_close(averaged(x)[:, 3:], averaged.branches["visual"](0.5 * (v + v.mean(1, keepdim=True))))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_builds_and_runs_forward_and_backward(name):
    model = build_variant(name, **SMALL)
    dyn, clip = inputs()
    loss = model(dyn, clip).logsumexp(1).sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    frozen = [p for p in model.backbone.parameters() if not p.requires_grad]
    assert bool(frozen) == (name not in {"full_finetune", "no_pretraining"})


@pytest.mark.parametrize("k", [0, 1, 3, 5, 7])
@pytest.mark.parametrize("r", [4, 8, 12])
def test_k_and_r_grid(k, r):
    model = MPT(**{**SMALL, "num_prompts": k, "reduction": r})
    dyn, clip = inputs(1)
    assert model.forward_features(dyn, clip).shape[1] == 1 + k + 4


def test_vpt_deep_replaces_prompts_in_every_layer():
    """The K prompt tokens that *enter* each block are that block's own learned prompts (VPT-deep), while
    VPT-shallow's prompts enter only the first block and then flow on like any token."""
    dyn, clip = inputs()
    for kind in ("vpt_deep", "vpt_shallow"):
        model = build_variant(kind, **SMALL)
        with torch.no_grad():
            model.vpt_prompts.normal_()  # distinct values per layer
        entering = []
        k = model.num_prompts
        hooks = [b.register_forward_pre_hook(lambda mod, args, seen=entering, k=k: seen.append(args[0][:, 1:1 + k]
                                                                                            .detach()))
                 for b in model.blocks]
        model.forward_features(dyn, clip)
        for h in hooks:
            h.remove()
        layers = model.vpt_prompts.shape[0]
        assert layers == (len(model.blocks) if kind == "vpt_deep" else 1)
        for i, tokens in enumerate(entering):
            if i < layers:  # the block's own prompts, for every image of the batch
                torch.testing.assert_close(tokens, model.vpt_prompts[i].expand(2, -1, -1))
            else:  # shallow: what block 0 made of them, not a learned prompt
                assert not torch.allclose(tokens, model.vpt_prompts[0].expand(2, -1, -1))


def test_parameter_count_of_small_model():
    model = MPT(**SMALL)
    d, r = model.backbone.embed_dim, 8
    branch = d * (d // r) + d // r + (d // r) * d + d
    expected = 2 * 3 * branch + count_parameters(model.generator) + d * 5 + 5
    assert count_parameters(model) == expected


def test_local_weights_load_through_timm_and_match(tmp_path):
    from safetensors.torch import save_file

    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = create_backbone("vit_tiny_patch16_224", weights=path, img_size=32, depth=2)
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, source.state_dict()[name], rtol=0, atol=0)
    random = create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2)
    qkv = "blocks.0.attn.qkv.weight"
    assert not torch.equal(random.state_dict()[qkv], source.state_dict()[qkv])
    model = MPT(**{**SMALL, "pretrained": True, "weights": path})
    torch.testing.assert_close(model.backbone.pos_embed, source.pos_embed, rtol=0, atol=0)


def test_missing_weights_file_and_unreachable_hub_are_loud(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="does not exist.*--weights"):
        create_backbone("vit_tiny_patch16_224", weights=tmp_path / "none.safetensors")
    with pytest.raises(PretrainedWeightsError, match="could not load pretrained weights.*--no-pretrained"):
        create_backbone("vit_tiny_patch16_224", pretrained=True, img_size=32, depth=2)  # offline: no hub


def test_count_macs_of_a_small_linear_model():
    model = torch.nn.Linear(10, 3)
    assert count_macs(model, torch.rand(4, 10)) == 4 * 10 * 3


@pytest.mark.slow
def test_paper_configuration_parameters_and_macs():
    dyn, clip = torch.rand(1, 3, 224, 224), torch.rand(1, 16, 3, 224, 224)
    plain = timm.create_model("vit_base_patch16_224", pretrained=False)
    assert count_macs(plain, dyn) / 1e9 == pytest.approx(17.56, abs=0.01)
    model = MPT(pretrained=False)
    assert count_parameters(model) / 1e6 == pytest.approx(5.5, abs=0.3)
    assert count_macs(model, dyn, clip) / 1e9 == pytest.approx(18.7, abs=0.5)


@pytest.mark.parametrize("backbone", ["vit_base_patch16_224.augreg_in21k", "vit_base_patch32_224.augreg_in21k",
                                      "vit_base_patch16_clip_224.openai", "vit_base_patch32_clip_224.openai"])
def test_the_papers_backbones_build_with_their_own_normalisation(backbone):
    model = MPT(backbone=backbone, pretrained=False, img_size=64, num_frames=2, backbone_kwargs={"depth": 1})
    dyn, clip = torch.rand(1, 3, 64, 64), torch.rand(1, 2, 3, 64, 64)
    assert model(dyn, clip).shape == (1, 5)
    expected_mean = (0.48145466, 0.4578275, 0.40821073) if "clip" in backbone else (0.5, 0.5, 0.5)
    torch.testing.assert_close(model.mean.flatten(), torch.tensor(expected_mean))


def test_clips_pre_norm_sees_the_prompts_like_every_other_token():
    model = MPT(**{**SMALL, "backbone_kwargs": {"depth": 1, "pre_norm": True}})
    bb = model.backbone
    assert isinstance(bb.norm_pre, torch.nn.LayerNorm)
    torch.nn.init.normal_(bb.norm_pre.weight)  # not the identity at initialisation
    dyn, clip = inputs()
    seq = model.embed(dyn, clip)
    prompts = model.generator(model.normalise(clip))
    patches = bb._pos_embed(bb.patch_embed(model.normalise(dyn)))
    torch.testing.assert_close(seq[:, 1:6], bb.norm_pre(prompts))
    torch.testing.assert_close(seq[:, 6:], bb.norm_pre(patches)[:, 1:])


def test_the_prompt_generator_does_not_grow_with_the_backbones_patch():
    sizes = {}
    for name in ("vit_small_patch16_224", "vit_small_patch32_224"):
        model = MPT(backbone=name, pretrained=False, img_size=64, num_frames=4, backbone_kwargs={"depth": 1})
        sizes[name] = count_parameters(model.generator)
        assert model(*inputs(1, 64)).shape == (1, 5)
    assert sizes["vit_small_patch16_224"] == sizes["vit_small_patch32_224"]


def test_only_the_rows_that_train_the_whole_vit_change_the_learning_rate():
    from mpt_utils.train import TrainConfig, learning_rate

    config = TrainConfig(lr=3e-4)
    assert learning_rate(config) == 3e-4
    assert learning_rate(config.replace(variant="full_finetune")) == pytest.approx(3e-5)
    assert learning_rate(config.replace(variant="no_pretraining")) == pytest.approx(3e-5)
    assert {name for name, v in VARIANTS.items() if v.lr_scale != 1} == {"full_finetune", "no_pretraining"}


@pytest.mark.slow
def test_vpt_rows_have_the_papers_parameter_budgets():
    for name, budget in (("vpt_shallow", 5.5), ("vpt_deep", 5.8)):
        model = build_variant(name, backbone="vit_base_patch16_224", pretrained=False)
        assert model.num_prompts == VPT_PROMPTS[name]
        assert count_parameters(model) / 1e6 == pytest.approx(budget, abs=0.01)
