"""The two-branch rows of the comparison: its inputs, its macro-to-micro pre-trained action branch, and the same
fold machinery as every other row (resumable, the held-out subject never fed)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mpt_utils.data import read_clip, read_key_frame
from mpt_utils.model import PretrainedWeightsError, build_model, build_two_branch, count_parameters
from mpt_utils.run import resolve_run
from mpt_utils.train import PretrainConfig, prepare_inputs, run_loso


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    """A ci run (4 subjects, 24 clips at 64 px) with its pre-trained action branch made (seconds)."""
    run = resolve_run("ci", progress=False)
    run.prepare_action_branch(progress=False)
    return run


def test_the_two_branch_network_reads_the_onset_and_apex_frames(ci_run, tmp_path):
    config = ci_run.config.replace(variant="two_branch")
    inputs = prepare_inputs(ci_run.samples[:3], config, cache_dir=tmp_path, progress=False)
    assert list(inputs.tensors) == ["onset", "apex"]
    onset, apex = inputs.batch(np.array([2]), torch.device("cpu"))
    sample, side = ci_run.samples[2], config.image_size
    assert onset.dtype == torch.uint8 and onset.shape == (1, 3, side, side)
    assert torch.equal(onset[0], torch.from_numpy(read_key_frame(sample, "onset", side)).permute(2, 0, 1))
    assert torch.equal(apex[0], torch.from_numpy(read_key_frame(sample, "apex", side)).permute(2, 0, 1))
    again = prepare_inputs(ci_run.samples[:3], config, cache_dir=tmp_path, progress=False)  # from the cache
    assert all(torch.equal(a, b) for a, b in zip(again.tensors.values(), inputs.tensors.values()))


def test_the_pre_trained_row_loads_its_macro_to_micro_action_branch(ci_run):
    pretraining = ci_run.action_pretraining
    assert pretraining.objective == "ma2mi" and pretraining.corpus_preset == "macro"
    saved = load_file(ci_run.config.action_weights)
    report = json.loads(open(ci_run.config.action_weights.replace(".safetensors", ".json")).read())
    assert report["n_val"] > 0 and len(report["held_out_loss"]) == pretraining.epochs  # scored on unseen faces
    from mpt_utils.train import pretraining_figure

    axes = pretraining_figure(report).axes[0]
    assert "action branch" in axes.get_title() and axes.get_ylabel() == "MSE to the later difference's pixels"
    torch.manual_seed(0)
    fresh = build_model(ci_run.config.replace(variant="two_branch"), 5)
    torch.manual_seed(0)
    loaded = build_model(ci_run.config.replace(variant="two_branch_ma2mi"), 5)
    for name, tensor in loaded.action.state_dict().items():
        assert torch.equal(tensor, saved[name])
    assert any(not torch.equal(a, b) for a, b in zip(fresh.action.state_dict().values(),
                                                      loaded.action.state_dict().values()))
    assert torch.equal(fresh.position.pos_embed, loaded.position.pos_embed)  # only the action branch differs
    missing = ci_run.config.replace(variant="two_branch_ma2mi", action_weights="/nowhere/action.safetensors")
    with pytest.raises(PretrainedWeightsError, match="has not been made yet: call run.prepare_action_branch"):
        build_model(missing, 5)


def test_the_action_branch_is_pre_trained_by_macro_to_micro_only(ci_run):
    with pytest.raises(ValueError, match="pre-trained by 'ma2mi' only"):
        PretrainConfig(backbone="two_branch_action", backbone_kwargs={"size": "quick"}, image_size=64, num_frames=8)
    assert ci_run.action_pretraining.backbone_kwargs == {"size": "quick"}
    assert build_two_branch("quick", 5, image_size=64).action.state_dict().keys() == load_file(
        ci_run.config.action_weights).keys()


def test_prefix_differences_are_each_prefix_end_minus_the_onset(ci_run, tmp_path):
    from mpt_utils.train.objectives import PREFIXES, prefix_differences

    sample = ci_run.samples[0]
    differences = prefix_differences([sample], 32, cache_dir=tmp_path, progress=False)
    assert differences.shape == (1, len(PREFIXES), 3, 32, 32)
    end = sample.onset + max(1, int(round(PREFIXES[-1] * (sample.offset - sample.onset))))
    frames = read_clip(sample.__class__(**{**sample.__dict__, "offset": end, "apex": end}), 2, 32) / 255.0
    assert torch.allclose(differences[0, -1], torch.from_numpy(frames[1] - frames[0]).float().permute(2, 0, 1))


@pytest.mark.parametrize("variant", ["two_branch", "two_branch_ma2mi"])
def test_two_branch_rows_resume_and_never_feed_the_held_out_subject(variant, ci_run, tmp_path):
    config = ci_run.config.replace(variant=variant)
    first = run_loso(ci_run.samples, config, tmp_path / variant, progress=False)
    folds = sorted((tmp_path / variant / "folds").iterdir())
    assert len(folds) == 2 and first.features.shape[1] == build_two_branch("quick", 5, 64).size.channels
    stamps = [(f / "metrics.json").stat().st_mtime_ns for f in folds]
    for fold in folds:
        meta = json.loads((fold / "metrics.json").read_text())
        fed = np.load(fold / "fed_indices.npy")
        with np.load(fold / "predictions.npz") as p:
            assert {ci_run.samples[i].group for i in p["indices"]} == {meta["subject"]}
        assert meta["subject"] not in {ci_run.samples[i].group for i in fed}
        assert set(load_file(str(fold / "trainable.safetensors"))) == set(build_model(config, 5).state_dict())
    again = run_loso(ci_run.samples, config, tmp_path / variant, progress=False)
    assert [(f / "metrics.json").stat().st_mtime_ns for f in folds] == stamps  # read back, not refitted
    assert again.metrics["f1"] == first.metrics["f1"]


def test_the_baselines_table_counts_each_rows_trained_parameters(ci_run):
    from mpt_utils.model import trained_parameters

    unloaded = dataclasses.replace(ci_run.config, pretrained=False, weights=None)  # the count needs no weights
    mpt = build_model(unloaded, 5)
    two_branch = build_model(ci_run.config.replace(variant="two_branch"), 5)
    assert trained_parameters(ci_run.config, 5) == count_parameters(mpt) < count_parameters(mpt, trainable=False)
    assert trained_parameters(ci_run.config.replace(variant="two_branch_ma2mi"), 5) == count_parameters(two_branch)


def test_an_mpt_folder_written_before_the_two_branch_settings_still_resumes(ci_run, tmp_path):
    """Folders of MPT's variants made before ``two_branch_size`` and ``action_weights`` existed resume (those settings
    shape no MPT model); a two-branch folder refuses another size."""
    from mpt_utils.train import ConfigMismatchError, open_run

    mpt = ci_run.config.replace(variant="head_only", max_folds=1)
    ci_run.prepare_backbone(progress=False)
    open_run(ci_run.samples, mpt, tmp_path / "mpt")
    saved = json.loads((tmp_path / "mpt" / "config.json").read_text())
    for name in ("two_branch_size", "action_weights"):  # as an older version wrote it
        del saved["config"][name]
    (tmp_path / "mpt" / "config.json").write_text(json.dumps(saved))
    open_run(ci_run.samples, mpt, tmp_path / "mpt")  # no ConfigMismatchError
    two_branch = ci_run.config.replace(variant="two_branch")
    open_run(ci_run.samples, two_branch, tmp_path / "two")
    with pytest.raises(ConfigMismatchError, match="two_branch_size"):
        open_run(ci_run.samples, two_branch.replace(two_branch_size="paper"), tmp_path / "two")
