"""Project plumbing: install files agree, profiles, device and precision rules, atomic writes."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import torch
import yaml

from mpt_utils.io import atomic_save_npz, atomic_write, atomic_write_json
from mpt_utils.profiles import PROFILES, get_profile
from mpt_utils.runtime import REPO_ROOT, REPO_URL, select_device, select_precision


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == wanted
    assert "-e ." in pip
    assert project["urls"]["Repository"] == REPO_URL


def test_readme_quick_start_is_what_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    install = 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"'
    assert f"{install} && .venv/bin/python -m mpt_utils.notebooks" in readme
    assert f"{install} && .venv/bin/python -m pytest" in readme
    assert install in ci and ".venv/bin/python -m pytest" in ci


def test_profiles():
    assert set(PROFILES) == {"ci", "quick", "paper"}
    paper = get_profile("paper")
    assert (paper.backbone, paper.image_size, paper.num_frames, paper.num_prompts, paper.reduction, paper.alpha,
            paper.lr, paper.batch_size, paper.max_folds, paper.pretrained) == (
        "vit_base_patch16_224.augreg_in21k", 224, 16, 5, 8, 20.0, 3e-4, 16, None, True)
    quick = get_profile("quick")
    assert quick.pretrained and quick.pretrain_clips > 0 and quick.device == "cpu"  # synthetic pre-training
    assert paper.pretrain_clips == 0  # the paper's backbone comes from the hub (or --weights)
    assert get_profile("quick", pretrained=None).pretrained is True  # None keeps the default
    assert get_profile("paper", pretrained=False).pretrained is False
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(TypeError, match="unknown profile field"):
        get_profile("ci", colour="red")


def test_device_and_precision_rules():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in {"cuda", "mps", "cpu"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            select_device("cuda")
    cpu = torch.device("cpu")
    assert select_precision(cpu).dtype is None and select_precision(cpu).name == "fp32"
    assert select_precision(torch.device("cuda"), "bf16").dtype == torch.bfloat16
    fp16 = select_precision(torch.device("cuda"), "fp16")
    assert fp16.dtype == torch.float16 and fp16.use_scaler
    with pytest.raises(ValueError):
        select_precision(cpu, "int8")


def test_atomic_writes_leave_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "a" / "result.json"
    atomic_write_json(target, {"x": 1})
    assert target.read_text().strip().startswith("{")

    def broken(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert '"x": 1' in target.read_text()  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temporary left over
    atomic_save_npz(tmp_path / "b.npz", a=np.arange(3))
    assert np.load(tmp_path / "b.npz")["a"].tolist() == [0, 1, 2]
