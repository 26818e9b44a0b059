"""LOSO training: metrics, protocol, artefacts, resuming, determinism, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from mpt_utils.data import ArrayCache
from mpt_utils.train import (
    ConfigMismatchError,
    TrainConfig,
    bootstrap_interval,
    compute_metrics,
    mean_interval,
    prepare_inputs,
    preprocessing_key,
    run_loso,
)

TINY = TrainConfig(backbone="vit_tiny_patch16_224", pretrained=False, backbone_kwargs={"depth": 1},
                   image_size=32, num_frames=4, num_prompts=2, epochs=2, batch_size=4, lr=1e-3,
                   device="cpu", precision="fp32", label="test")


def test_metrics_equal_scikit_learn_on_random_predictions():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(1)
    labels = ["a", "b", "c", "d", "e"]
    y_true, y_pred = rng.choice(labels, 300), rng.choice(labels, 300)
    m = compute_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["f1"] == m["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", labels=labels))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert "per_fold_mean_f1" not in m
    with_folds = compute_metrics(y_true, y_pred, labels, groups=rng.integers(0, 5, 300))
    assert "per_fold_mean_f1" in with_folds and with_folds["f1"] == m["f1"]


def test_per_fold_f1_and_uar_skip_a_class_absent_from_the_fold_alike():
    # fold "s1" has no "c" clip but one is predicted: s1 scores on a and b only, in both means
    y_true = ["a", "b", "a", "b", "a", "c"]
    y_pred = ["a", "b", "a", "c", "b", "c"]
    m = compute_metrics(y_true, y_pred, ["a", "b", "c"], groups=["s1"] * 4 + ["s2"] * 2)
    s1_f1 = (1.0 + 2 / 3) / 2  # a: TP2 -> 1; b: TP1 FN1 -> 2/3; c absent from s1's truth: not averaged
    s1_uar = (1.0 + 0.5) / 2
    s2_f1 = (0.0 + 1.0) / 2  # a: FN1 -> 0, c: TP1 -> 1 (b absent)
    s2_uar = (0.0 + 1.0) / 2
    assert m["per_fold_mean_f1"] == pytest.approx((s1_f1 + s2_f1) / 2)
    assert m["per_fold_mean_uar"] == pytest.approx((s1_uar + s2_uar) / 2)


def test_metrics_follow_the_paper_equations_on_a_hand_example():
    m = compute_metrics([0, 0, 1, 2], [0, 1, 1, 1], [0, 1, 2])
    # class 0: TP1 FN1 -> F1 2/3; class 1: TP1 FP2 -> 2/4; class 2: FN1 -> 0
    assert m["accuracy"] == 0.5 and m["f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert m["uar"] == pytest.approx((0.5 + 1 + 0) / 3)
    with pytest.raises(ValueError, match="not among"):
        compute_metrics([0, 3], [0, 0], [0, 1])


def test_bootstrap_interval_holds_the_score_and_narrows_with_more_subjects():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]

    def noisy(n_subjects: int):  # right 60 % of the time, 10 clips a subject
        y = rng.choice(labels, 10 * n_subjects)
        pred = np.where(rng.random(len(y)) < 0.6, y, rng.choice(labels, len(y)))
        return y, pred, np.repeat(np.arange(n_subjects), 10)

    y, pred, groups = noisy(10)
    low, high = bootstrap_interval(y, pred, labels, groups=groups)
    assert low < compute_metrics(y, pred, labels)["f1"] < high
    y_big, pred_big, groups_big = noisy(160)
    big_low, big_high = bootstrap_interval(y_big, pred_big, labels, groups=groups_big)
    assert big_high - big_low < (high - low) / 2  # 16 x the subjects: about a quarter of the width
    assert bootstrap_interval(y, y, labels, groups=groups) == (1.0, 1.0)  # always right: no spread
    assert bootstrap_interval(y, pred, labels, groups=groups, seed=3) == bootstrap_interval(
        y, pred, labels, groups=groups, seed=3)
    with pytest.raises(ValueError, match="metric"):
        bootstrap_interval(y, pred, labels, metric="auc")
    with pytest.raises(ValueError, match="one entry per value"):
        bootstrap_interval(y, pred, labels, groups=groups[:5])


def test_mean_interval_resamples_subjects_not_clips():
    # two subjects: one always 0, one always 1; resampling subjects gives means of 0, 0.5 or 1
    values, groups = np.repeat([0.0, 1.0], 50), np.repeat(["a", "b"], 50)
    assert mean_interval(values, groups, level=0.99) == (0.0, 1.0)
    low, high = mean_interval(values, level=0.99)  # 100 independent clips: a narrow interval around 0.5
    assert 0.3 < low < 0.5 < high < 0.7
    with pytest.raises(ValueError, match="level"):
        mean_interval(values, groups, level=1.5)
    # an undefined score (NaN) is left out with its subject entry, not spread into every bootstrap mean
    assert mean_interval(np.append(values, np.nan), np.append(groups, "c"), level=0.99) == (0.0, 1.0)
    with pytest.raises(ValueError, match="all 3 values are NaN"):
        mean_interval([np.nan] * 3)


@pytest.fixture(scope="module")
def finished_run(tiny_samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    return run_loso(tiny_samples, TINY, out, progress=False)


def test_run_writes_every_artefact_and_never_trains_on_the_test_subject(finished_run, tiny_samples):
    out = finished_run.out_dir
    folds = sorted(p for p in (out / "folds").iterdir())
    assert len(folds) == len({s.group for s in tiny_samples}) and finished_run.complete
    for fold in folds:
        meta = json.loads((fold / "metrics.json").read_text())
        fed = np.load(fold / "fed_indices.npy")
        with np.load(fold / "predictions.npz") as p:
            test = p["indices"]
            assert p["features"].shape == (len(test), 192) and p["logits"].shape == (len(test), 5)
        assert {tiny_samples[i].group for i in test} == {meta["subject"]}
        assert meta["subject"] not in {tiny_samples[i].group for i in fed}  # what was actually fed
        assert len(fed) == meta["n_train"]
        weights = load_file(str(fold / "trainable.safetensors"))
        assert weights and not any(k.startswith("backbone.") for k in weights)  # backbone not copied
    assert len(finished_run.predictions) == len(tiny_samples)
    assert finished_run.features.shape == (len(tiny_samples), 192)
    for name in ("results.json", "predictions.csv", "summary.md", "train.log", "config.json"):
        assert (out / name).is_file()
    assert "RANDOM weights" in (out / "summary.md").read_text()
    from mpt_utils.train import load_result

    reloaded = load_result(tiny_samples, out)
    assert reloaded.metrics["f1"] == finished_run.metrics["f1"] and reloaded.config.epochs == TINY.epochs


def test_the_run_folder_names_every_file_a_run_writes(finished_run, tiny_samples):
    from mpt_utils.train import RunFolder

    folder = RunFolder(finished_run.out_dir)
    subjects = sorted({s.group for s in tiny_samples})
    assert folder.finished_folds() == sorted(folder.fold(s) for s in subjects)
    assert all(folder.fold_done(s) and not folder.claim(s).exists() for s in subjects)
    for fold in folder.finished_folds():  # exactly the artefacts the layout names, nothing else
        assert sorted(p.name for p in fold.iterdir()) == sorted(
            [RunFolder.WEIGHTS, RunFolder.PREDICTIONS, RunFolder.FED, RunFolder.METRICS, RunFolder.COMPLETE])
    assert {folder.config, folder.log, folder.results, folder.predictions, folder.summary} <= set(
        folder.path.iterdir())
    assert not folder.fold_done("nobody") and list(folder.claims()) == []


def test_same_seed_on_cpu_gives_identical_predictions(finished_run, tiny_samples, tmp_path):
    again = run_loso(tiny_samples, TINY, tmp_path / "b", progress=False)
    assert again.predictions["prediction"].tolist() == finished_run.predictions["prediction"].tolist()
    np.testing.assert_array_equal(again.features, finished_run.features)


def test_the_folds_of_a_run_in_this_process_share_one_context_and_refuse_another_runs(tiny_samples, tmp_path,
                                                                                        monkeypatch):
    from mpt_utils.train import FoldContext, open_run, run_task

    built = []
    real_build = FoldContext.build.__func__
    monkeypatch.setattr(FoldContext, "build", classmethod(lambda cls, *a, **k: built.append(a[1]) or real_build(
        cls, *a, **k)))
    config = TINY.replace(epochs=1, max_folds=2)
    run_loso(tiny_samples, config, tmp_path / "a", progress=False)  # two folds, each through run_task
    assert len(built) == 1 and len([p for p in (tmp_path / "a" / "folds").iterdir()]) == 2
    context = FoldContext.build(tiny_samples, open_run(tiny_samples, config, tmp_path / "a"), progress=False)
    other = config.replace(seed=1)
    with pytest.raises(ValueError, match="made for another run"):
        run_task(tiny_samples, other, tmp_path / "b", tiny_samples[0].group, context=context)


def test_resume_after_an_interruption_loses_no_finished_fold(finished_run, tiny_samples, tmp_path):
    out = tmp_path / "c"
    seen = []

    def interrupt(subject, epoch, loss):
        seen.append(subject)
        if len({*seen}) == 2 and epoch == 0:  # the second fold, mid-way
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_loso(tiny_samples, TINY, out, progress=False, on_epoch_end=interrupt)
    done = [p for p in (out / "folds").iterdir() if not p.name.startswith(".")]
    assert len(done) == 1
    stamp = (done[0] / "metrics.json").stat().st_mtime_ns
    resumed = run_loso(tiny_samples, TINY, out, progress=False)
    assert (done[0] / "metrics.json").stat().st_mtime_ns == stamp  # the finished fold was not redone
    assert not list((out / "folds").glob(".tmp-*"))
    assert resumed.predictions["prediction"].tolist() == finished_run.predictions["prediction"].tolist()
    assert resumed.metrics["f1"] == finished_run.metrics["f1"]


def test_a_different_config_refuses_to_mix_into_the_same_folder(finished_run, tiny_samples):
    with pytest.raises(ConfigMismatchError, match=r"different run .*epochs"):
        run_loso(tiny_samples, TINY.replace(epochs=3), finished_run.out_dir, progress=False)
    with pytest.raises(ConfigMismatchError, match="dataset"):
        run_loso(tiny_samples[:-1], TINY, finished_run.out_dir, progress=False)
    # settings that do not change results (how many folds to run) may differ
    run_loso(tiny_samples, TINY.replace(max_folds=1), finished_run.out_dir, progress=False)


def test_a_run_is_keyed_on_its_checkpoints_contents_not_its_path(tiny_samples, tmp_path):
    from safetensors.torch import save_file

    from mpt_utils.analysis import load_fold_model
    from mpt_utils.model import PretrainedWeightsError, create_backbone
    from mpt_utils.train import load_run_config

    backbone = create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)
    state = {k: v.contiguous() for k, v in backbone.state_dict().items()}
    first = tmp_path / "old_home" / "w.safetensors"
    first.parent.mkdir()
    save_file(state, str(first))
    config = TINY.replace(pretrained=True, weights=str(first), max_folds=1)
    out = tmp_path / "run"
    run_loso(tiny_samples, config, out, progress=False)
    fold = next((out / "folds").iterdir())
    stamp = (fold / "metrics.json").stat().st_mtime_ns

    # the same file in a new place (another MPT_HOME): the run resumes and records where it now lives
    moved = tmp_path / "new_home" / "w.safetensors"
    moved.parent.mkdir()
    first.rename(moved)
    run_loso(tiny_samples, config.replace(weights=str(moved)), out, progress=False)
    assert (fold / "metrics.json").stat().st_mtime_ns == stamp
    assert load_run_config(out).weights == str(moved)
    assert load_fold_model(out, fold.name, progress=False) is not None  # rebuilt from the new place

    # another checkpoint under the old name: refused, the message names the contents
    state["cls_token"] = state["cls_token"] + 1
    save_file(state, str(moved))
    with pytest.raises(ConfigMismatchError, match="checkpoint's contents"):
        run_loso(tiny_samples, config.replace(weights=str(moved)), out, progress=False)
    with pytest.raises(PretrainedWeightsError, match="does not exist. The weights of"):  # with instructions
        run_loso(tiny_samples, config.replace(weights=str(first)), tmp_path / "run2", progress=False)


def test_the_variants_learning_rate_reaches_the_optimiser(tiny_samples, tmp_path, monkeypatch):
    import torch

    import mpt_utils.train.loso as loso

    rates = []

    class SpyAdam(torch.optim.Adam):
        def __init__(self, params, lr, **kwargs):
            rates.append(lr)
            super().__init__(params, lr=lr, **kwargs)

    monkeypatch.setattr(loso.torch.optim, "Adam", SpyAdam)
    config = TINY.replace(max_folds=1, epochs=1, lr=1e-3)
    run_loso(tiny_samples, config.replace(variant="full_finetune"), tmp_path / "full", progress=False)
    run_loso(tiny_samples, config, tmp_path / "mpt", progress=False)
    assert rates == [pytest.approx(1e-4), 1e-3]
    fold = next((tmp_path / "full" / "folds").iterdir())
    assert json.loads((fold / "metrics.json").read_text())["lr"] == pytest.approx(1e-4)


def test_a_folder_written_before_a_setting_existed_resumes_when_the_setting_is_at_its_default(
        finished_run, tiny_samples):
    path = finished_run.out_dir / "config.json"
    saved = json.loads(path.read_text())
    older = {**saved, "config": {k: v for k, v in saved["config"].items()
                                 if k not in ("lambda_c", "skip_finest", "color", "chroma_attenuation")}}
    path.write_text(json.dumps(older))
    try:
        resumed = run_loso(tiny_samples, TINY, finished_run.out_dir, progress=False)  # nothing to redo
        assert resumed.metrics["f1"] == finished_run.metrics["f1"]
        with pytest.raises(ConfigMismatchError, match="skip_finest"):
            run_loso(tiny_samples, TINY.replace(skip_finest=True), finished_run.out_dir, progress=False)
    finally:
        path.write_text(json.dumps(saved))


def test_a_folder_written_before_checkpoint_digests_is_refused_with_a_clear_message(finished_run, tiny_samples):
    path = finished_run.out_dir / "config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in saved.items() if k != "weights_sha256"}))
    try:
        with pytest.raises(ConfigMismatchError, match="older version .* start a new --out folder"):
            run_loso(tiny_samples, TINY, finished_run.out_dir, progress=False)
    finally:
        path.write_text(json.dumps(saved))  # the module's other tests reuse this folder


def test_a_composite_reports_each_source_dataset(tiny_samples, tmp_path):
    """Samples of two datasets (subjects kept apart by their dataset): results.json adds per_dataset."""
    half = len(tiny_samples) // 2
    mixed = [dataclasses.replace(s, dataset="casme2") if i < half else s for i, s in enumerate(tiny_samples)]
    result = run_loso(mixed, TINY.replace(epochs=1), tmp_path / "mixed", progress=False)
    per = json.loads((tmp_path / "mixed" / "results.json").read_text())["per_dataset"]
    assert set(per) == {"casme2", "synthetic"}
    assert sum(d["n_clips"] for d in per.values()) == result.metrics["n"] == len(mixed)
    part = result.predictions[result.predictions["dataset"] == "casme2"]
    expected = compute_metrics(part["label"], part["prediction"], result.config.classes)
    assert per["casme2"]["uf1"] == pytest.approx(expected["f1"])
    assert per["casme2"]["uar"] == pytest.approx(expected["uar"])
    assert "Per source dataset" in (tmp_path / "mixed" / "summary.md").read_text()


def test_bad_input(tiny_samples, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        run_loso([], TINY, tmp_path / "x", progress=False)
    no_surprise = [s for s in tiny_samples if s.label != "surprise"]
    with pytest.raises(ValueError, match=r"\['surprise'\] .*no samples in the whole dataset"):
        run_loso(no_surprise, TINY, tmp_path / "y", progress=False)


def test_a_fold_whose_training_subjects_lack_a_class_still_trains(tiny_samples, tmp_path):
    # give every "surprise" clip to one subject: its fold trains without any surprise example
    owner = tiny_samples[0].subject
    moved = [dataclasses.replace(s, subject=owner) if s.label == "surprise" else s for s in tiny_samples]
    result = run_loso(moved, TINY.replace(epochs=1), tmp_path / "z", progress=False)
    assert result.complete and len(result.predictions) == len(moved)


def test_validation_split_comes_from_training_subjects_only(tiny_samples, tmp_path):
    config = TINY.replace(val_subjects=1, select_epoch_on_val=True, max_folds=1)
    result = run_loso(tiny_samples, config, tmp_path / "v", progress=False)
    fold = next((tmp_path / "v" / "folds").iterdir())
    meta = json.loads((fold / "metrics.json").read_text())
    assert meta["n_val"] > 0 and len(meta["history"]["val_uar"]) == config.epochs
    assert meta["n_train"] + meta["n_val"] + meta["n_test"] == len(tiny_samples)
    assert not result.complete and "INCOMPLETE" in (tmp_path / "v" / "summary.md").read_text()


def test_balanced_class_weights_use_training_labels_only():
    from mpt_utils.train.loso import class_weights

    assert class_weights(np.array([0, 0, 1]), 3, "none") is None
    w = class_weights(np.array([0, 0, 0, 1]), 3, "balanced")
    np.testing.assert_allclose(w.numpy(), [4 / (2 * 3), 4 / (2 * 1), 0.0])  # class 2 absent from training: 0
    with pytest.raises(ValueError, match="class_weights"):
        class_weights(np.array([0]), 2, "inverse")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_the_gpu_precision_paths_train_on_the_cpu(precision, tiny_samples, monkeypatch):
    """bf16 autocast, and fp16 autocast with a gradient scaler, run on the CPU: finite losses, the scaler steps
    and unscales, the trainable tensors change and the frozen backbone does not."""
    import torch

    from mpt_utils.data import label_indices
    from mpt_utils.model import build_variant
    from mpt_utils.train import prepare_inputs, resolve_classes, train_fold

    calls = {"unscale": 0, "step": 0}

    class CountingScaler(torch.amp.GradScaler):
        def unscale_(self, optimizer):
            calls["unscale"] += 1
            return super().unscale_(optimizer)

        def step(self, optimizer, *args, **kwargs):
            calls["step"] += 1
            return super().step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp, "GradScaler", CountingScaler)
    config = TINY.replace(precision=precision, classes=resolve_classes(tiny_samples, TINY))
    inputs = prepare_inputs(tiny_samples, config, progress=False)
    labels = label_indices(tiny_samples, config.classes)
    template = build_variant("mpt", **config.model_kwargs(len(config.classes)))
    model, history, fed = train_fold(template, inputs, labels, np.arange(len(tiny_samples)), config,
                                     torch.device("cpu"), seed=0, progress=False)
    assert all(np.isfinite(history["train_loss"]))
    if precision == "fp16":
        steps = config.epochs * -(-len(tiny_samples) // config.batch_size)
        assert calls == {"unscale": steps, "step": steps} and len(history["grad_scale"]) == config.epochs
    else:
        assert calls == {"unscale": 0, "step": 0} and "grad_scale" not in history
    before, after = template.state_dict(), model.state_dict()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(not torch.equal(before[n], after[n]) for n in trainable)
    assert all(torch.equal(before[n], after[n]) for n in before if n.startswith("backbone."))


@pytest.mark.slow
def test_the_paper_profile_runs_end_to_end_on_the_cpu_at_toy_size(tmp_path):
    """The researcher's command, ``--profile paper --no-pretrained``, on two synthetic subjects: the real 224 px,
    T=16, K=5, r=8 and ViT-B/16, one epoch; every output labelled as a random-backbone timing run."""
    from mpt_utils.cli import main
    from mpt_utils.data import make_synthetic

    root = make_synthetic(tmp_path / "tiny", n_subjects=2, n_clips=10, progress=False)
    out = tmp_path / "paper"
    assert main(["--profile", "paper", "--no-pretrained", "--root", str(root), "--out", str(out),
                 "--epochs", "1", "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert (saved["backbone"], saved["image_size"], saved["num_frames"], saved["num_prompts"], saved["reduction"],
            saved["alpha"]) == ("vit_base_patch16_224.augreg_in21k", 224, 16, 5, 8, 20.0)
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["random_backbone"] and results["folds_total"] == 2
    for name in ("table.md", "summary.md"):
        assert "RANDOM weights: a timing run, not the paper's experiment" in (out / name).read_text()
    assert "synthetic data" in (out / "table.md").read_text()


def test_the_frozen_feature_probe_reads_a_head_only_runs_features_under_loso(tiny_samples, tmp_path):
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

    from mpt_utils.train import frozen_feature_probe, probe_model

    result = run_loso(tiny_samples, TINY.replace(variant="head_only", epochs=1), tmp_path / "head", progress=False)
    p = result.predictions
    # the frozen backbone's features do not depend on the fold: a clip's feature is the same from any fold model
    m = frozen_feature_probe(result)
    expected = cross_val_predict(probe_model(), result.features, p["label"], groups=p["subject"],
                                 cv=LeaveOneGroupOut())
    assert m["f1"] == pytest.approx(compute_metrics(p["label"], expected, result.config.classes)["f1"])
    assert m["n"] == len(p) and "per_fold_mean_uar" in m
    mpt = run_loso(tiny_samples, TINY.replace(epochs=1), tmp_path / "mpt", progress=False)
    with pytest.raises(ValueError, match="only a head-only run"):
        frozen_feature_probe(mpt)


@pytest.mark.parametrize("variant", ["mpt", "two_branch"])
def test_the_preprocessing_key_is_what_the_cache_holds(variant, tiny_samples, tmp_path):
    """One key names what a model's cached inputs depend on: prepare_inputs stores them under it (read back without
    computing), the magnification settings matter to MPT's inputs and not to the two-branch network's key frames."""
    config = TINY.replace(variant=variant)
    prepare_inputs(tiny_samples[:2], config, tmp_path, progress=False)
    cached = ArrayCache(tmp_path).load_or_compute(tiny_samples[0], preprocessing_key(config),
                                                  lambda: pytest.fail("not in the cache under preprocessing_key"))
    assert set(cached) == ({"dynamic", "magnified"} if variant == "mpt" else {"onset", "apex"})
    louder = config.replace(alpha=config.alpha + 10)
    assert (preprocessing_key(louder) == preprocessing_key(config)) == (variant == "two_branch")
    assert preprocessing_key(config.replace(image_size=config.image_size * 2)) != preprocessing_key(config)

