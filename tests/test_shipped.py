"""The backbone that ships inside the package: its card, its use by the quick profile, and its rebuild."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mpt_utils.data import subject_identities
from mpt_utils.model import create_backbone
from mpt_utils.train import pretrain as pretrain_module
from mpt_utils.train.pretrain import SHIPPED_DIR, PretrainConfig, checkpoint_name
from mpt_utils.train.shipped import (
    DEV_SEEDS,
    REBUILD_COMMAND,
    TUNED_ROWS,
    build_shipped,
    card_problems,
    file_sha256,
    frozen_features,
    profile_pretraining,
    tuned_key,
    tuned_table,
)

QUICK = profile_pretraining("quick")
SHIPPED = SHIPPED_DIR / checkpoint_name(QUICK)
TOY = PretrainConfig(backbone="vit_tiny_patch16_224", backbone_kwargs={"depth": 1}, image_size=32, num_frames=4,
                     n_subjects=3, n_clips=12, epochs=1, batch_size=8, val_subjects=1, objective="ma2mi+au",
                     target="pixels", seed=5)


def test_the_quick_backbone_ships_with_a_card_that_matches_it():
    assert SHIPPED.is_file(), f"the quick profile's backbone {SHIPPED.name} is not in {SHIPPED_DIR}"
    assert SHIPPED.stat().st_size <= 12 * 2**20
    assert card_problems(SHIPPED, QUICK) == []
    card = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert card["profile"] == "quick" and card["objective"] == QUICK.objective
    assert card["command"] == REBUILD_COMMAND.format(profile="quick", threads=card["built"]["threads"])
    for key in ("corpus", "schedule", "built", "commit", "development", "train_loss"):
        assert card.get(key) is not None, key
    assert set(card["development"]["shipped"]) >= {"cls_f1_seed1", "patch_f1_seed1", "cls_f1_seed2", "patch_f1_seed2"}
    assert card["corpus"]["seed"] not in (0, 1, 2)  # neither the report set nor a development set
    # a commit anyone can check out and rebuild from: 40 hex digits, no uncommitted changes ("+dirty")
    assert re.fullmatch(r"[0-9a-f]{40}", card["commit"]), card["commit"]


def test_the_quick_action_branch_ships_with_its_card_and_quick_runs_read_it(monkeypatch, tmp_path):
    """The two-branch network's pre-trained action branch ships as the backbone does: its card matches it and the
    profile, records what its pre-training scored on held-out corpus people, and a quick run in an empty MPT_HOME
    reads the package's file (nothing is pre-trained)."""
    from mpt_utils.run import resolve_run
    from mpt_utils.train.shipped import rebuild_command

    action = profile_pretraining("quick", "action")
    shipped = SHIPPED_DIR / checkpoint_name(action)
    assert shipped.is_file() and shipped.stat().st_size <= 12 * 2**20
    assert card_problems(shipped, action) == []
    card = json.loads(shipped.with_suffix(".json").read_text())
    assert card["command"] == rebuild_command("quick", card["built"]["threads"], "action")
    assert re.fullmatch(r"[0-9a-f]{40}", card["commit"]) and "development" not in card
    assert len(card["held_out_loss"]) == action.epochs and card["n_val"] > 0
    monkeypatch.setenv("MPT_HOME", str(tmp_path))
    run = resolve_run("quick", progress=False)
    assert Path(run.config.action_weights) == shipped and run.prepare_action_branch(progress=False) == str(shipped)
    assert not (tmp_path / "data" / "weights").exists()


def test_the_shipped_backbone_loads_like_a_hub_file_and_differs_from_a_random_one():
    images = torch.rand(4, 3, QUICK.image_size, QUICK.image_size, generator=torch.Generator().manual_seed(0))
    shipped_cls, _ = frozen_features(SHIPPED, images, QUICK)
    random_cls, _ = frozen_features(None, images, QUICK)
    assert not np.allclose(shipped_cls, random_cls, atol=1e-3)
    backbone = create_backbone(QUICK.backbone, weights=SHIPPED, img_size=QUICK.image_size, **QUICK.backbone_kwargs)
    assert len(backbone.blocks) == QUICK.backbone_kwargs["depth"]


def test_a_damaged_or_foreign_card_is_reported(tmp_path):
    copy = tmp_path / SHIPPED.name
    copy.write_bytes(SHIPPED.read_bytes())
    card = json.loads(SHIPPED.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps(card))
    assert card_problems(copy, QUICK) == []
    assert any("differs from the profile's in ['epochs']" in p
               for p in card_problems(copy, dataclasses.replace(QUICK, epochs=QUICK.epochs + 1)))
    damaged = bytearray(SHIPPED.read_bytes())
    damaged[-1] ^= 1
    copy.write_bytes(bytes(damaged))
    assert any("sha256" in p for p in card_problems(copy, QUICK))
    copy.with_suffix(".json").unlink()
    assert "missing" in card_problems(copy, QUICK)[0]


def test_quick_runs_use_the_shipped_file_and_never_pretrain(monkeypatch, tmp_path):
    """An empty MPT_HOME: the quick profile's backbone is the package's own file, and nothing is pre-trained."""
    from mpt_utils.run import resolve_run

    monkeypatch.setenv("MPT_HOME", str(tmp_path))

    def refuse(*args, **kwargs):
        raise AssertionError("the quick profile started a pre-training")

    monkeypatch.setattr(pretrain_module, "pretrain_backbone", refuse)
    from mpt_utils.profiles import get_profile

    tiny_data = get_profile("quick").replace(synthetic_subjects=2, synthetic_clips=12)  # same backbone, less data
    run = resolve_run(tiny_data, progress=False)
    assert Path(run.config.weights) == SHIPPED and run.backbone_source == "synthetic"
    assert run.prepare_backbone(progress=False) == str(SHIPPED)
    assert not list(tmp_path.rglob("*.safetensors"))
    assert pretrain_module.OBJECTIVE_NOTES[QUICK.objective] in run.caption


def test_the_corpus_shares_no_face_with_the_evaluation_sets():
    corpus = subject_identities(QUICK.seed, QUICK.n_subjects, "macro" if QUICK.objective != "au" else "default")
    for seed in (0, 1):
        evaluation = subject_identities(seed, 26)
        for a in corpus:
            for b in evaluation:
                assert a.landmarks != b.landmarks and not np.array_equal(a.albedo_open, b.albedo_open)


def test_subject_identities_are_the_generators_own(monkeypatch, tmp_path):
    from mpt_utils.data import make_synthetic
    from mpt_utils.data.synthetic import generator

    drawn = []
    real = generator._draw_identities
    monkeypatch.setattr(generator, "_draw_identities", lambda *a: drawn.extend(real(*a)) or drawn)
    make_synthetic(tmp_path / "s", n_subjects=2, n_clips=12, seed=9, progress=False)
    again = subject_identities(9, 2)
    assert [i.landmarks for i in drawn] == [i.landmarks for i in again]
    assert all(np.array_equal(a.albedo_open, b.albedo_open) for a, b in zip(drawn, again))


def test_a_toy_rebuild_gives_the_same_bytes_and_a_true_card(tmp_path):
    first = build_shipped("toy", tmp_path / "a", threads=1, dev_seeds=(), config=TOY, progress=False)
    second = build_shipped("toy", tmp_path / "b", threads=1, dev_seeds=(), config=TOY, progress=False)
    assert first.name == second.name == checkpoint_name(TOY)
    assert first.read_bytes() == second.read_bytes()
    card = json.loads(first.with_suffix(".json").read_text())
    assert card["sha256"] == file_sha256(first) and card_problems(first, TOY) == []
    assert card["corpus"]["preset"] == "macro" and card["objective"] == "ma2mi+au"
    assert card["built"]["threads"] == 1 and card["schedule"]["epochs"] == 1


def test_profiles_without_a_synthetic_backbone_are_refused():
    with pytest.raises(ValueError, match="pre-trains no synthetic backbone"):
        profile_pretraining("paper")


def test_the_backbone_table_ships_beside_the_checkpoint_and_agrees_with_its_card():
    import json as _json

    from mpt_utils.train.shipped import BACKBONE_TABLE, backbone_table

    table = backbone_table()
    assert table.index[0] == "random" and table.index[-1].startswith("pixel probe")
    shipped = table.index[table["shipped"]]
    assert len(shipped) == 1, "exactly one row is the quick profile's backbone"
    raw = _json.loads(BACKBONE_TABLE.read_text())[shipped[0]]
    assert raw["checkpoint"] == SHIPPED.name
    card = _json.loads(SHIPPED.with_suffix(".json").read_text())["development"]["shipped"]
    scores = [k for k in card if not k.endswith("_ci")]  # the F1s (a card written since also holds intervals)
    assert {k: round(card[k], 6) for k in scores} == {k: round(raw[k], 6) for k in scores}
    assert not table.loc[shipped[0], "reads labels"]  # the shipped backbone reads no label
    for seed in DEV_SEEDS:  # each probe F1 beside its interval over subjects, which holds it
        low, high = map(float, table.loc[shipped[0], f"CLS 90 % interval, seed {seed}"].split("-"))
        assert low <= table.loc[shipped[0], f"CLS probe F1, seed {seed}"] <= high
    with pytest.raises(FileNotFoundError, match="bench_backbones.py"):
        backbone_table(SHIPPED_DIR / "missing.json")


def test_the_pretraining_figure_names_the_loss_of_its_objective():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mpt_utils.train import pretraining_figure, pretraining_report

    card = pretraining_report(SHIPPED)
    fig = pretraining_figure(card)
    assert fig.axes[0].get_ylabel() == "MSE to the later prefix's pixels"
    assert len(fig.axes[0].lines[0].get_xdata()) == len(card["train_loss"]) == QUICK.epochs
    au = {"train_loss": [0.5, 0.4], "n_train": 10, "seconds": 60, "config": {}, "val_au_auc": 0.7}
    fig_au = pretraining_figure(au)  # a report made before objectives existed: AU detection
    assert fig_au.axes[0].get_ylabel() == "AU binary cross-entropy" and "0.70" in fig_au.axes[0].get_title()
    plt.close("all")


def test_the_tuned_table_gives_each_tuned_row_its_f1_and_interval(tmp_path):
    seed = DEV_SEEDS[0]
    row = {tuned_key(name, seed): 0.2 + i / 10 for i, name in enumerate(TUNED_ROWS)}
    row |= {tuned_key(name, seed) + "_ci": [0.1, 0.3 + i / 10] for i, name in enumerate(TUNED_ROWS)}
    table_file = tmp_path / "backbones.json"
    table_file.write_text(json.dumps({"random": {"cls_f1_seed1": 0.2, **row}, "untuned": {"cls_f1_seed1": 0.3}}))
    table = tuned_table(table_file)
    assert list(table.index) == [("random", seed)]  # a backbone without tuned rows is left out
    assert table.loc[("random", seed), "MPT F1"] == pytest.approx(0.2 + (len(TUNED_ROWS) - 1) / 10)
    assert table.loc[("random", seed), ["head only low", "head only high"]].tolist() == [0.1, 0.3]
    assert tuned_key("motion prompts only", 2) == "motion_prompts_only_f1_seed2"


def test_the_development_probe_gives_its_f1_with_an_interval_over_subjects():
    from types import SimpleNamespace

    from mpt_utils.train.shipped import probe_f1

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 24)
    samples = [SimpleNamespace(label=label, group=f"s{i % 8}") for i, label in enumerate(labels)]
    informative = np.eye(3)[np.searchsorted(["a", "b", "c"], labels)] + 0.8 * rng.normal(size=(len(labels), 3))
    f1, (low, high) = probe_f1(informative, samples)
    assert low <= f1 <= high and high - low > 0.01  # subjects differ, so the interval has a width
    noise_f1, _ = probe_f1(rng.normal(size=(len(labels), 3)), samples)
    assert f1 > 0.6 > noise_f1
