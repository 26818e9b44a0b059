"""The synthetic backbone pre-training: AU targets, the corpus, the checkpoint and its reuse."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mpt_utils.data import load_dataset, make_synthetic
from mpt_utils.data.synthetic import ACTION_UNITS, EMOTION_AUS, action_unit_set
from mpt_utils.model import create_backbone
from mpt_utils.train import (
    PretrainConfig,
    TrainConfig,
    prepare_inputs,
    pretrain_backbone,
    pretraining_report,
)
from mpt_utils.train import pretrain as pretrain_module
from mpt_utils.train.inputs import dynamic_images
from mpt_utils.train.pretrain import CORPUS_COMBINATIONS, au_targets

TINY = PretrainConfig(backbone="vit_tiny_patch16_224", backbone_kwargs={"depth": 1}, image_size=32, num_frames=4,
                      n_subjects=4, n_clips=24, amplitude=(4.0, 8.0), epochs=2, batch_size=8, val_subjects=1)


def _load(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fear/sadness rows dropped by the 5-class scheme
        return load_dataset("synthetic", root)


def test_action_unit_set_drops_sides():
    assert action_unit_set("4+L10") == {"4", "10"}
    assert action_unit_set("R14") == {"14"}
    assert action_unit_set("") == set()


def test_au_targets_mark_the_coded_units(tmp_path):
    samples = _load(make_synthetic(tmp_path / "s", n_subjects=2, n_clips=12, progress=False))
    y = au_targets(samples)
    assert y.shape == (len(samples), len(ACTION_UNITS))
    for s, row in zip(samples, y):
        assert {ACTION_UNITS[j] for j in row.nonzero()[0]} == action_unit_set(s.action_units)
    with pytest.raises(ValueError, match="no samples"):
        au_targets([])
    with pytest.raises(ValueError, match="no action units"):
        au_targets([dataclasses.replace(s, action_units="") for s in samples])


def test_make_synthetic_checks_recipes(tmp_path):
    bad = {e: ["12"] for e in EMOTION_AUS}
    bad["happiness"] = ["12+99"]
    with pytest.raises(ValueError, match="unknown AUs \\['99'\\]"):
        make_synthetic(tmp_path / "a", n_subjects=2, n_clips=12, recipes=bad, progress=False)
    with pytest.raises(ValueError, match="missing emotions \\['surprise'\\]"):
        make_synthetic(tmp_path / "b", n_subjects=2, n_clips=12, progress=False,
                       recipes={e: ["1"] for e in EMOTION_AUS if e != "surprise"})


def test_corpus_aus_are_independent_of_the_emotion(tmp_path):
    """Every emotion draws from the same combinations, so AUs carry no emotion label."""
    root = tmp_path / "corpus"
    samples = pretrain_module.make_au_corpus(
        PretrainConfig("vit_tiny_patch16_224", {}, 32, 4, n_subjects=3, n_clips=40), root, progress=False)
    assert all(s.action_units in CORPUS_COMBINATIONS for s in samples)
    params = json.loads((root / "SYNTHETIC.json").read_text())["params"]
    assert params["seed"] != 0  # not the evaluation set's seed: other identities
    assert all(v == list(CORPUS_COMBINATIONS) for v in params["recipes"].values())
    # the default set keeps its emotion recipes (and its byte-identical marker)
    default = json.loads((make_synthetic(tmp_path / "d", n_subjects=2, n_clips=12, progress=False)
                          / "SYNTHETIC.json").read_text())["params"]
    assert "recipes" not in default


def test_dynamic_images_equal_the_training_inputs_and_cache_no_clips(tmp_path):
    samples = _load(make_synthetic(tmp_path / "s", n_subjects=2, n_clips=12, progress=False))
    full = prepare_inputs(samples, TrainConfig(image_size=32, num_frames=4), cache_dir=tmp_path / "a", progress=False)
    only = dynamic_images(samples, 32, 4, cache_dir=tmp_path / "b", progress=False)
    assert torch.equal(only, full.dynamic)
    assert torch.equal(dynamic_images(samples, 32, 4, cache_dir=tmp_path / "b", progress=False), only)  # cached
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["dynamic"]  # neither clips nor magnified clips kept


def test_pretrain_writes_a_checkpoint_that_loads_like_a_hub_file(tmp_path):
    out = pretrain_backbone(TINY, tmp_path / "w" / "tiny.safetensors", progress=False)
    report = pretraining_report(out)
    assert report == json.loads(out.with_suffix(".json").read_text()) and pretraining_report(None) is None
    assert len(report["train_loss"]) == TINY.epochs and all(0 < x < 1 for x in report["train_loss"])
    assert report["n_val"] > 0 and 0.0 <= report["val_au_auc"] <= 1.0
    saved = load_file(out)
    assert not any(k.startswith("head") for k in saved)

    loaded = create_backbone("vit_tiny_patch16_224", weights=out, img_size=32, depth=1)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    torch.manual_seed(0)
    random = create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)
    assert not torch.equal(random.blocks[0].mlp.fc1.weight, loaded.blocks[0].mlp.fc1.weight)


def test_pretraining_is_deterministic_and_its_corpus_is_regenerated_exactly(tmp_path):
    # without a corpus_root the corpus is deleted after training; separate caches make b regenerate and
    # re-read every frame, so equal tensors show that deleting the corpus loses nothing
    a = load_file(pretrain_backbone(TINY, tmp_path / "a.safetensors", cache_dir=tmp_path / "ca", progress=False))
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("au-corpus")] == []
    b = load_file(pretrain_backbone(TINY, tmp_path / "b.safetensors", cache_dir=tmp_path / "cb", progress=False))
    assert all(torch.equal(a[k], b[k]) for k in a)
    kept = tmp_path / "corpus"
    pretrain_backbone(TINY, tmp_path / "c.safetensors", corpus_root=kept, cache_dir=tmp_path / "ca", progress=False)
    assert (kept / "SYNTHETIC.json").is_file()  # a corpus_root given by the caller is kept


def test_a_run_makes_its_synthetic_backbone_once_when_asked(tmp_path, monkeypatch):
    from mpt_utils.model import PretrainedWeightsError
    from mpt_utils.run import resolve_run
    from mpt_utils.train import run_loso

    calls = []
    real = pretrain_module.pretrain_backbone

    def counting(config, out_file, **kwargs):
        calls.append(config)
        return real(dataclasses.replace(config, epochs=1), out_file, **kwargs)

    monkeypatch.setattr(pretrain_module, "pretrain_backbone", counting)
    run = resolve_run("ci", progress=False)
    assert run.backbone_source == "synthetic" and not calls  # resolving trains nothing
    assert not Path(run.config.weights).exists()
    with pytest.raises(PretrainedWeightsError, match="has not been made yet: call run.prepare_backbone"):
        run_loso(run.samples, run.config, tmp_path / "early", progress=False)
    assert not (tmp_path / "early").exists() or not list((tmp_path / "early").rglob("metrics.json"))
    first = run.prepare_backbone(progress=False)
    assert first == run.config.weights and run.prepare_backbone(progress=False) == first and len(calls) == 1
    assert calls[0].backbone_kwargs == run.config.backbone_kwargs and calls[0].image_size == run.config.image_size
    # another pre-training setting makes another file rather than reusing a stale one
    other = resolve_run(run.profile.replace(pretrain_epochs=3), progress=False)
    assert other.config.weights != first and other.pretraining.epochs == 3
    # a user's own checkpoint wins; a random backbone asks for no file
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"x")
    assert resolve_run("ci", weights=mine, progress=False).config.weights == str(mine.resolve())
    assert resolve_run("ci", pretrained=False, progress=False).config.weights is None


def test_pretraining_needs_clips():
    with pytest.raises(ValueError, match="clips > 0"):
        PretrainConfig.for_run(TrainConfig(), clips=0, epochs=1)


# --- macro to micro (the "ma2mi" objective) --------------------------------------------------------------------


def test_as_tokens_takes_tokens_or_a_feature_map():
    from mpt_utils.train.objectives import as_tokens

    assert as_tokens(torch.zeros(2, 5, 8)).shape == (2, 5, 8)
    assert as_tokens(torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5)).shape == (2, 20, 3)
    assert as_tokens(torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5))[0, 1, 2] == 2 * 20 + 1  # channel 2, position 1
    with pytest.raises(ValueError, match="feature map"):
        as_tokens(torch.zeros(2, 3))


def test_the_moving_average_follows_its_formula():
    from mpt_utils.train.objectives import ema_momentum, ema_update

    assert ema_momentum(0, 10, 0.99) == pytest.approx(0.99) and ema_momentum(10, 10, 0.99) == pytest.approx(1.0)
    teacher, student = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = teacher.weight.detach().clone()
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, 0.9 * before + 0.1 * student.weight)


@pytest.fixture(scope="module")
def macro_corpus(tmp_path_factory):
    """A tiny macro-expression corpus (the ``macro`` preset) and its prefix dynamic images."""
    from mpt_utils.train.objectives import prefix_dynamic_images

    root = make_synthetic(tmp_path_factory.mktemp("macro") / "corpus", n_subjects=3, n_clips=12, seed=7,
                          preset="macro", progress=False)
    samples = _load(root)
    return samples, prefix_dynamic_images(samples, 32, 4, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_the_macro_preset_moves_more_and_longer_than_the_default(macro_corpus, tmp_path):
    samples, prefixes = macro_corpus
    default = _load(make_synthetic(tmp_path / "default", n_subjects=3, n_clips=12, seed=7, progress=False))
    span = lambda ss: sum(s.offset - s.onset for s in ss) / len(ss)  # noqa: E731
    assert span(samples) > 1.2 * span(default)
    assert prefixes.shape == (len(samples), 3, 3, 32, 32) and 0 <= prefixes.min() and prefixes.max() <= 1


def _future_prediction(samples, prefixes, encoder_factory):
    from mpt_utils.train.objectives import train_future_prediction

    torch.manual_seed(0)
    encoder = encoder_factory()
    history = train_future_prediction(encoder, lambda net, x: net(x), prefixes, epochs=2, batch_size=8, lr=1e-3,
                                      weight_decay=0.05, seed=3)
    return encoder, history["train_loss"]


class _FeatureMapEncoder(torch.nn.Module):
    """A CNN with batch norm that returns a feature map, as the two-branch network's action branch does."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8),
                                       torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2, padding=1))

    def forward(self, x):
        return self.net(x)


class _ViTTokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.vit = create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)

    def forward(self, x):
        return self.vit.forward_features(x)


def test_future_prediction_reads_no_label_and_is_deterministic(macro_corpus):
    """Shuffling the emotion and AU columns changes nothing: the inputs and the trained weights are the same."""
    import random

    from mpt_utils.train.objectives import prefix_dynamic_images

    samples, prefixes = macro_corpus
    labels = [(s.emotion, s.label, s.action_units) for s in samples]
    random.Random(0).shuffle(labels)
    shuffled = [dataclasses.replace(s, emotion=e, label=lab, action_units=aus)
                for s, (e, lab, aus) in zip(samples, labels)]
    assert [s.action_units for s in shuffled] != [s.action_units for s in samples]
    again = prefix_dynamic_images(shuffled, 32, 4, progress=False)  # a new cache: computed from the frames again
    assert torch.equal(again, prefixes)
    first, losses = _future_prediction(samples, prefixes, _ViTTokens)
    second, _ = _future_prediction(shuffled, again, _ViTTokens)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_future_prediction_trains_an_encoder_with_a_feature_map(macro_corpus):
    samples, prefixes = macro_corpus
    torch.manual_seed(0)
    fresh = _FeatureMapEncoder()
    trained, losses = _future_prediction(samples, prefixes, _FeatureMapEncoder)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(fresh.net[0].weight, trained.net[0].weight)  # it learned


def test_a_ma2mi_checkpoint_is_built_deterministically_and_loads_like_a_hub_file(tmp_path):
    config = dataclasses.replace(TINY, objective="ma2mi", n_clips=12, n_subjects=3, epochs=1)
    assert config.fingerprint() != TINY.fingerprint()
    assert dataclasses.replace(TINY, objective="au").fingerprint() == TINY.fingerprint()  # AU names unchanged
    first = pretrain_backbone(config, tmp_path / "a.safetensors", cache_dir=tmp_path / "c1", progress=False)
    second = pretrain_backbone(config, tmp_path / "b.safetensors", cache_dir=tmp_path / "c2", progress=False)
    assert first.read_bytes() == second.read_bytes()
    report = pretraining_report(first)
    assert report["objective"] == "ma2mi" and report["config"]["objective"] == "ma2mi"
    backbone = create_backbone("vit_tiny_patch16_224", weights=first, img_size=32, depth=1)
    random_backbone = create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)
    assert not torch.equal(backbone.blocks[0].attn.qkv.weight, random_backbone.blocks[0].attn.qkv.weight)
    with pytest.raises(ValueError, match="objective must be one of"):
        dataclasses.replace(TINY, objective="mae")


def test_pixel_targets_are_the_later_prefix_cut_into_the_token_grid():
    from mpt_utils.train.objectives import patch_targets

    images = torch.rand(2, 3, 32, 32)
    targets, skip = patch_targets(images, tokens=5)  # a CLS token and a 2 x 2 grid of 16-pixel patches
    assert skip == 1 and targets.shape == (2, 4, 3 * 16 * 16)
    assert torch.allclose(targets.mean(-1), torch.zeros(2, 4), atol=1e-5)
    first = images[0, :, :16, 16:].reshape(-1)  # the top-right patch is the second token of the grid
    assert torch.allclose(targets[0, 1], (first - first.mean()) / (first.var() + 1e-6).sqrt(), atol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        patch_targets(torch.rand(1, 3, 32, 32), tokens=9)  # 32 pixels do not cut into 3 x 3


@pytest.mark.parametrize("encoder", [_ViTTokens, _FeatureMapEncoder])
def test_future_prediction_of_pixels_trains_tokens_and_feature_maps(encoder, macro_corpus):
    from mpt_utils.train.objectives import train_future_prediction

    _, prefixes = macro_corpus
    torch.manual_seed(0)
    fresh = encoder()
    torch.manual_seed(0)
    trained = encoder()
    history = train_future_prediction(trained, lambda net, x: net(x), prefixes, epochs=2, batch_size=8, lr=1e-3,
                                      weight_decay=0.0, seed=3, target="pixels")
    assert all(torch.isfinite(torch.tensor(history["train_loss"]))) and set(history) == {"train_loss"}
    changed = [not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values())]
    assert any(changed)
    with pytest.raises(ValueError, match="target must be one of"):
        train_future_prediction(trained, lambda net, x: net(x), prefixes, 1, 8, 1e-3, 0.0, 3, target="frames")


def test_the_combined_objective_reads_action_units_but_no_emotion(macro_corpus):
    """``"ma2mi+au"``: shuffling the emotion column changes nothing; shuffling the AU targets changes the weights."""
    from mpt_utils.train.objectives import train_future_prediction

    samples, prefixes = macro_corpus
    labels = torch.from_numpy(au_targets(samples))

    def trained(targets):
        torch.manual_seed(0)
        encoder = _ViTTokens()
        history = train_future_prediction(encoder, lambda net, x: net(x), prefixes, epochs=1, batch_size=8, lr=1e-3,
                                         weight_decay=0.05, seed=3, target="pixels", labels=targets)
        assert all(torch.isfinite(torch.tensor(history["train_loss"])))
        return encoder.state_dict()

    emotions = [s.emotion for s in samples][::-1]
    renamed = [dataclasses.replace(s, emotion=e) for s, e in zip(samples, emotions)]
    same = trained(torch.from_numpy(au_targets(renamed)))  # targets made from the AU column alone
    first = trained(labels)
    assert all(torch.equal(first[k], same[k]) for k in first)
    shuffled = trained(labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))])
    assert any(not torch.equal(first[k], shuffled[k]) for k in first)
    plain = trained(None)
    assert any(not torch.equal(first[k], plain[k]) for k in first)  # the AU head's gradient reached the encoder


def test_checkpoint_names_say_their_objective_and_only_the_card_says_the_origin(tmp_path):
    from mpt_utils.config import TrainConfig
    from mpt_utils.train.pretrain import backbone_note, backbone_source, checkpoint_name, checkpoint_objective

    for objective in ("au", "ma2mi", "ma2mi+au"):  # the names, for a reader of the folder
        name = checkpoint_name(dataclasses.replace(TINY, objective=objective))
        assert f"-synthetic-{objective.replace('+', '-')}-" in name
    assert checkpoint_name(TINY).startswith("vit_tiny_patch16_224-synthetic-au-")  # AU names unchanged
    # the origin and the objective come from the card beside the file, whatever the file is called
    named, renamed = tmp_path / checkpoint_name(TINY), tmp_path / "my-backbone.safetensors"
    for weights in (named, renamed):
        weights.write_bytes(b"weights")
        config = TrainConfig(backbone="vit_tiny_patch16_224", pretrained=True, weights=str(weights))
        assert backbone_source(config) == "file" and checkpoint_objective(weights) is None  # no card: a file
        weights.with_suffix(".json").write_text(json.dumps({"config": {"objective": "ma2mi"}}))
        assert backbone_source(config) == "synthetic" and checkpoint_objective(weights) == "ma2mi"
        assert "synthetic macro-expressions (MA2MI future prediction)" in backbone_note(config)
    other_json = tmp_path / "other.safetensors"
    other_json.write_bytes(b"weights")
    other_json.with_suffix(".json").write_text(json.dumps({"config": {"objective": "imagenet"}}))
    assert checkpoint_objective(other_json) is None  # a card of something else is not ours


@pytest.mark.parametrize("target", ["pixels", "latent"])
@pytest.mark.parametrize("encoder", [_ViTTokens, _FeatureMapEncoder])
def test_held_out_clips_are_scored_every_epoch_without_changing_the_weights(encoder, target, macro_corpus):
    """Scoring held-out clips draws no random number and updates no statistic (the CNN's batch norm included):
    the weights are the same bytes with and without it; the history gains a held-out loss per epoch and the
    loss of the forecast "nothing changes"."""
    from mpt_utils.train.objectives import train_future_prediction

    _, prefixes = macro_corpus
    train, unseen = prefixes[:-6], prefixes[-6:]

    def trained(held_out):
        torch.manual_seed(0)
        net = encoder()
        history = train_future_prediction(net, lambda m, x: m(x), train, epochs=2, batch_size=8, lr=1e-3,
                                          weight_decay=0.05, seed=3, target=target, held_out=held_out)
        return net.state_dict(), history

    plain, without = trained(None)
    scored, history = trained(unseen)
    assert all(torch.equal(plain[k], scored[k]) for k in plain)
    assert history["train_loss"] == without["train_loss"] and set(without) == {"train_loss"}
    assert len(history["held_out_loss"]) == 2 and all(np.isfinite(history["held_out_loss"]))
    assert np.isfinite(history["held_out_copy_loss"]) and history["held_out_copy_loss"] >= 0


def test_copying_the_early_prefix_is_a_perfect_forecast_when_nothing_moves_on():
    """The yardstick is the loss of the forecast "the later prefix looks as the early one does": zero where that
    is true (every prefix of a held-out clip the same image), positive where the motion went on."""
    from mpt_utils.train.objectives import copy_forecast, global_target, patch_targets

    early = torch.rand(3, 3, 32, 32)
    forecast = copy_forecast(early, "pixels", tokens=5, encode=None)  # a CLS token and a 2 x 2 grid of patches
    assert forecast.shape == (3, 5, 3 * 16 * 16)
    assert torch.equal(forecast[:, 1:], patch_targets(early, 5)[0])
    assert torch.equal(forecast[:, :1], global_target(early, 5))
    later = early.clone()
    later[:, :, :8, :8] += 0.5  # the motion went on in the top-left patch
    assert torch.nn.functional.mse_loss(forecast[:, 1:], patch_targets(later, 5)[0]) > 0.01
    torch.manual_seed(0)
    vit = _ViTTokens().eval()
    with torch.no_grad():
        assert torch.equal(copy_forecast(early, "latent", 5, vit), vit(early))


def test_the_macro_report_scores_held_out_faces_and_its_figure_draws_them(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mpt_utils.train import pretraining_figure

    config = dataclasses.replace(TINY, objective="ma2mi", target="pixels", n_clips=12, n_subjects=3, epochs=2,
                                 val_subjects=1)
    report = pretraining_report(pretrain_backbone(config, tmp_path / "m.safetensors", cache_dir=tmp_path / "c",
                                                  progress=False))
    assert report["n_val"] > 0 and len(report["held_out_loss"]) == 2
    fig = pretraining_figure(report)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3 and list(lines[1].get_ydata()) == report["held_out_loss"]
    assert list(lines[2].get_ydata()) == [report["held_out_copy_loss"]] * 2
    assert f"copying {report['held_out_copy_loss']:.2f}" in fig.axes[0].get_title()
    plt.close("all")
