"""The one resolver: profiles reach the config, data is recognised, the composite pools, inputs fail clearly."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
from conftest import make_casme2, make_samm, make_smic

from mpt_utils.config import PAPER
from mpt_utils.data import class_names, detect_dataset
from mpt_utils.model import PretrainedWeightsError
from mpt_utils.profiles import PROFILES, Profile
from mpt_utils.run import RunError, resolve_run
from mpt_utils.session import start_notebook
from mpt_utils.train.pretrain import checkpoint_name


def _resolve(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # emotions outside a scheme are dropped and counted
        return resolve_run(*args, progress=False, **kwargs)


def _synthetic_params(run) -> dict:
    return json.loads((run.root / "SYNTHETIC.json").read_text())["params"]


def _synthetic_set(p, run) -> bool:
    """The generated evaluation set has the profile's sizes (a run on real data has none to check)."""
    if run.dataset != "synthetic":
        return True
    params = _synthetic_params(run)
    subjects = len({s.group for s in run.samples})
    return params["n_subjects"] == p.synthetic_subjects == subjects and params["n_clips"] == p.synthetic_clips


def _pretraining(p, run) -> bool:
    """The synthetic pre-training has the profile's sizes, or there is none."""
    if not p.pretrain_clips:
        return run.pretraining is None
    settings = all(getattr(run.pretraining, k) == v for k, v in p.pretrain_settings.items())
    return (run.pretraining.n_clips, run.pretraining.epochs) == (p.pretrain_clips, p.pretrain_epochs) and settings


def _action_pretraining(p, run) -> bool:
    """The two-branch action branch's pre-training: the profile's corpus (quick's for a profile without one), its
    action settings applied, on the run's two-branch size and image size, its checkpoint named in the config."""
    source = p if p.pretrain_clips else PROFILES["quick"]
    made = run.action_pretraining
    settings = all(getattr(made, k) == v for k, v in source.action_pretrain_settings.items())
    return (settings and made.n_clips == source.pretrain_clips and made.objective == "ma2mi"
            and made.backbone_kwargs == {"size": run.config.two_branch_size}
            and made.image_size == run.config.image_size
            and run.config.action_weights.endswith(checkpoint_name(made)))


#: How each Profile field shows in a resolved run. A new field without a line here fails the test below.
PROFILE_FIELDS = {
    "name": lambda p, run: run.name.startswith(p.name) and run.caption.startswith(f"profile {p.name}"),
    "purpose": lambda p, run: bool(p.purpose),
    "settings": lambda p, run: all(getattr(run.config, k) == v for k, v in p.settings.items()),
    "synthetic_subjects": _synthetic_set,
    "synthetic_clips": _synthetic_set,
    "pretrain_clips": _pretraining,
    "pretrain_epochs": _pretraining,
    "pretrain_settings": _pretraining,
    "action_pretrain_settings": _action_pretraining,
}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_field_reaches_the_run(name, tmp_path):
    assert set(PROFILE_FIELDS) == {f.name for f in dataclasses.fields(Profile)}, "wire the new Profile field"
    profile = PROFILES[name]
    if name == "paper":  # offline: a weights file instead of the hub, and a small real layout instead of 255 clips
        weights = tmp_path / "vit.safetensors"
        weights.write_bytes(b"weights")
        run = _resolve(name, dataset="casme2", data_root=make_casme2(tmp_path / "CASME2"), weights=weights)
    else:
        run = _resolve(name)
    for field, check in PROFILE_FIELDS.items():
        assert check(profile, run), f"profile {name}: {field} does not reach the run"
    unchanged = {f.name for f in dataclasses.fields(PAPER)} - set(profile.settings) - {"weights", "action_weights",
                                                                                        "classes", "label"}
    assert all(getattr(run.config, f) == getattr(PAPER, f) for f in unchanged)  # the rest are the paper's


def test_overrides_win_and_unknown_settings_are_refused():
    run = _resolve("ci", epochs=7, variant="head_only", alpha=None)
    assert (run.config.epochs, run.config.variant, run.config.alpha) == (7, "head_only", PAPER.alpha)
    with pytest.raises(RunError, match="unknown setting.*'epoch'"):
        _resolve("ci", epoch=7)
    with pytest.raises(RunError, match="unknown profile 'huge'"):
        _resolve("huge")


def test_classes_are_the_schemes_in_its_order():
    run = _resolve("ci", scheme="megc2019")
    assert run.classes == class_names("megc2019") == run.config.classes
    assert {s.label for s in run.samples} == set(run.classes)
    assert "megc2019 classes" in run.caption
    default = _resolve("ci")
    assert default.classes == class_names("casme2") and "classes" not in default.caption.split(" · ")[1]


@pytest.mark.parametrize("layout", ["casme2", "samm", "smic", "synthetic"])
def test_a_data_folder_is_recognised_by_its_layout(layout, tmp_path):
    folder = tmp_path / layout
    if layout == "synthetic":
        _resolve("ci", dataset="synthetic", data_root=folder)  # written there because synthetic data was asked for
    else:
        {"casme2": make_casme2, "samm": make_samm, "smic": make_smic}[layout](folder)
    assert detect_dataset(folder) == layout
    assert (folder / "SYNTHETIC.json").exists() == (layout == "synthetic")
    if layout != "samm":  # the SAMM fixture lacks two of SAMM's five classes: it can be a composite source only
        run = _resolve("ci", data_root=folder)
        assert run.dataset == layout and run.root == folder


def test_every_caller_names_its_inputs_by_its_own_options_or_parameters():
    import re

    from mpt_utils import cli, notebooks
    from mpt_utils.run import INPUT_NAMES
    from mpt_utils.runtime import REPO_ROOT
    from mpt_utils.session import find_notebooks

    for caller, parser in (("train", cli.build_parser()), ("notebooks", notebooks.build_parser())):
        options = {option for action in parser._actions for option in action.option_strings}
        for name, flag in INPUT_NAMES[caller].items():
            wanted = [f"--{field.replace('_', '-')}" for field in cli.OVERRIDES] if name == "setting" else \
                flag.split("/")
            assert set(wanted) <= options, (caller, name, sorted(set(wanted) - options))
    for path in find_notebooks(REPO_ROOT / "notebooks"):
        cell = next(c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
        source = "".join(cell["source"])
        for name, text in INPUT_NAMES["parameters cell"].items():
            assert re.search(rf"^{text.split(' = ')[0]}\s*=", source, re.M), (path.name, name)
    with pytest.raises(ValueError, match="caller must be one of"):
        _resolve("ci", caller="a notebook")


def test_an_unknown_or_missing_folder_is_refused_naming_the_callers_flag(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match=r"cannot tell which dataset .* pass --dataset casme2"):
        _resolve("ci", data_root=empty, caller="train")
    assert list(empty.iterdir()) == []  # no synthetic set written where none was asked for
    with pytest.raises(RunError, match=r"does not exist \(--data-root\)"):
        _resolve("ci", data_root=tmp_path / "missing", caller="notebooks")
    with pytest.raises(RunError, match=r"needs its folder: pass data_root="):
        _resolve("ci", dataset="smic")
    with pytest.raises(RunError, match="contradict"):
        _resolve("ci", weights="w.safetensors", pretrained=False)


def test_the_backbone_is_checked_before_any_data_work(tmp_path):
    """Offline (the tests set HF_HUB_OFFLINE), the paper's hub weights fail at once: no data is generated."""
    with pytest.raises(PretrainedWeightsError, match="HF_HUB_OFFLINE.*--weights"):
        _resolve("paper")
    assert not (tmp_path.parent / "data").exists()
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        _resolve("paper", weights=tmp_path / "none.safetensors")
    random = _resolve("ci", pretrained=False)
    assert random.config.weights is None and "RANDOM weights" in random.caption and random.pretraining is None


def test_the_megc2019_composite_pools_sources_with_distinct_subjects(tmp_path):
    roots = {"casme2": make_casme2(tmp_path / "c"), "smic": make_smic(tmp_path / "s")}
    run = _resolve("ci", roots=roots)
    assert run.dataset == "megc2019" and run.root is None and run.sources == roots
    assert run.classes == class_names("megc2019") and run.scheme == "megc2019"
    assert {s.dataset for s in run.samples} == {"casme2", "smic"}
    assert all(s.group.startswith(f"{s.dataset}/") for s in run.samples)
    assert "MEGC 2019 composite of casme2, smic" in run.caption
    with pytest.raises(RunError, match="two or three of"):
        _resolve("ci", dataset="megc2019", roots={"smic": roots["smic"]})
    with pytest.raises(RunError, match="uses the 'megc2019' scheme"):
        _resolve("ci", roots=roots, scheme="casme2")
    with pytest.raises(RunError, match="belong to the composite"):
        _resolve("ci", dataset="casme2", roots=roots)


def test_a_notebook_session_holds_the_run(tmp_path):
    session = start_notebook("06_loso_training", "ci", output_root=str(tmp_path / "out"), interactive=False)
    assert session.run.config.image_size == PROFILES["ci"].settings["image_size"]
    assert session.runs_dir == tmp_path / "out" / "runs" / "ci-synthetic"
    assert session.run.caption in str(session) and str(session.device) in str(session)
    with pytest.raises(RunError, match=r"data_root = \.\.\. \(parameters cell\)"):
        start_notebook("01_data_loading", "ci", output_root=str(tmp_path / "out"), data_root=str(tmp_path / "no"))
