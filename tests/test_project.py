"""Project plumbing: install files agree, profiles, device and precision rules, atomic writes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mpt_utils.config import PAPER, TrainConfig
from mpt_utils.io import atomic_save_npz, atomic_write, atomic_write_json
from mpt_utils.profiles import PROFILES, Profile, get_profile, profiles_table
from mpt_utils.runtime import REPO_ROOT, REPO_URL, select_device, select_precision


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e .", "-c requirements/lock.txt"} == wanted
    assert "-e ." in pip and "-c requirements/lock.txt" in pip  # the same tested pins as the README's commands
    assert project["urls"]["Repository"] == REPO_URL


def test_the_repository_address_is_written_one_way_everywhere():
    """pyproject's project.urls is the address; the README's Colab badges, CITATION.cff and the runtime constant
    (which the notebooks' Colab cells and the book use: tests/test_notebooks.py) name the same repository."""
    address = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    slug = address.removeprefix("https://github.com/")
    assert REPO_URL == address
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert cff["repository-code"] == address
    readme = (REPO_ROOT / "README.md").read_text()
    badges = re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/main/notebooks/(\S+?\.ipynb)", readme)
    notebooks = sorted(p.name for p in (REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(name for _, name in badges) == notebooks, "one Colab badge per notebook in the README"
    assert {repo for repo, _ in badges} == {slug}
    elsewhere = set(re.findall(r"github\.com/([\w.-]+/[\w.-]+)", readme)) - {slug}
    assert not {r for r in elsewhere if r.split("/")[0] == slug.split("/")[0]}, f"another address of ours: {elsewhere}"


def test_readme_quick_start_is_what_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    install = 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" -c requirements/lock.txt'
    assert f"{install} && .venv/bin/python -m mpt_utils.notebooks" in readme
    assert f"{install} && .venv/bin/python -m pytest" in readme
    assert install in ci and ".venv/bin/python -m pytest" in ci


def test_profiles_are_overrides_of_the_papers_settings():
    assert set(PROFILES) == {"ci", "quick", "paper"}
    paper = get_profile("paper")
    assert paper.settings == {} and paper.train_config() == PAPER  # the paper's profile changes nothing
    assert (PAPER.backbone, PAPER.image_size, PAPER.num_frames, PAPER.num_prompts, PAPER.reduction, PAPER.alpha,
            PAPER.lr, PAPER.batch_size, PAPER.max_folds, PAPER.pretrained) == (
        "vit_base_patch16_224.augreg_in21k", 224, 16, 5, 8, 20.0, 3e-4, 16, None, True)
    quick = get_profile("quick")
    assert quick.synthetic_backbone and quick.train_config().device == "cpu"  # synthetic pre-training
    assert not paper.synthetic_backbone  # the paper's backbone comes from the hub (or --weights)
    assert quick.train_config(epochs=None).epochs == quick.settings["epochs"]  # None keeps the profile's value
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(TypeError, match="unknown setting"):
        Profile("bad", "a typo", settings={"epoch": 3})  # caught where the profile is defined
    table = profiles_table()
    assert list(table.columns) == ["ci", "quick", "paper"]
    assert table.loc["image_size"].tolist() == ["64", "112", "224"] and "nan" not in table.to_string().lower()


def test_defaults_are_read_from_the_config_not_typed_again():
    """Every public keyword default that is a setting equals the paper's TrainConfig value."""
    import inspect

    from mpt_utils.data import read_clip
    from mpt_utils.model import MPT, create_backbone
    from mpt_utils.motion import magnify, magnify_reference

    names = {"size": "image_size", "img_size": "image_size", "generator_channels": "generator_channels"}
    for function in (MPT.__init__, magnify, magnify_reference, read_clip, create_backbone):
        for name, parameter in inspect.signature(function).parameters.items():
            field = names.get(name, name)
            if field == "backbone_kwargs":  # None stands for {} (no mutable default)
                continue
            if field in TrainConfig.__dataclass_fields__ and parameter.default is not inspect.Parameter.empty:
                assert parameter.default == getattr(PAPER, field), f"{function.__qualname__}({name}=...)"


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


#: The package's layers, bottom to top (the README's Layout section describes them). A module may import
#: from its own layer and the ones below, never from above.
LAYERS = [
    {"io", "runtime", "config", "metrics", "paper", "profiles", "source"},
    {"motion"},
    {"data"},
    {"model"},
    {"train"},
    {"run"},
    {"experiments", "executors", "analysis", "plotting", "sweep"},
    {"cli", "session"},
    {"notebooks", "book", "output_checks"},
]


def _mpt_imports(path, package: list[str]) -> set[str]:
    """The first name under ``mpt_utils`` of every mpt_utils module that ``path`` (in ``package``) imports."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = (node.module or "").split(".") if node.module else []
            full = base + module if node.level else module
            targets = [full + [a.name] for a in node.names] if not node.module else [full]
        else:
            continue
        for parts in targets:
            if parts[0] == "mpt_utils" and len(parts) > 1:
                found.add(parts[1])
    return found


def _module_graph(package: Path) -> dict[str, set[str]]:
    """Who imports whom inside ``package``, module by module (``pkg.sub.mod``), lazy imports inside functions
    included. A name taken from a package is traced through its ``__init__``'s re-exports to the module that
    defines it, so that a package handing names on is not itself counted as a link."""
    import ast

    root = package.name
    files = {".".join((root, *p.relative_to(package).with_suffix("").parts)).removesuffix(".__init__"): p
             for p in package.rglob("*.py")}
    trees = {name: ast.parse(path.read_text()) for name, path in files.items()}

    def base_of(name: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = name.split(".")
        is_package = files[name].name == "__init__.py"
        keep = len(parts) - node.level + (1 if is_package else 0)
        return ".".join(parts[:keep] + ([node.module] if node.module else []))

    def defining(module: str, attr: str, seen: frozenset = frozenset()) -> str:
        """The module that defines ``module.attr``: a submodule, or what ``module``'s ``__init__`` re-exports."""
        if f"{module}.{attr}" in files:
            return f"{module}.{attr}"
        if module in files and files[module].name == "__init__.py" and module not in seen:
            for node in trees[module].body:
                if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == attr for a in node.names):
                    real = next(a.name for a in node.names if (a.asname or a.name) == attr)
                    return defining(base_of(module, node), real, seen | {module})
        return module

    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = [defining(base_of(name, node), a.name) for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def import_cycles(package: Path) -> list[list[str]]:
    """Every set of modules of ``package`` that import each other in a loop (strongly connected, 2 or more)."""
    graph, order, low, stack, on_stack, cycles = _module_graph(package), {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's algorithm
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return cycles


def test_no_import_cycle_anywhere_in_the_package():
    assert import_cycles(REPO_ROOT / "mpt_utils") == []


def test_the_cycle_check_finds_planted_cycles(tmp_path):
    """The control: a lazy import back (a <-> b), and a loop through a subpackage's re-export (a -> sub.c -> a)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import g\nfrom .sub import h\n\n\ndef f():\n    pass\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n\n    return f\n")
    (pkg / "sub" / "__init__.py").write_text("from .c import h\n")
    (pkg / "sub" / "c.py").write_text("from ..a import f\n\n\ndef h():\n    return f\n")
    (pkg / "d.py").write_text("from .sub import h\n")  # uses the subpackage, no loop
    assert import_cycles(pkg) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (pkg / "b.py").write_text("def g():\n    pass\n")
    (pkg / "sub" / "c.py").write_text("def h():\n    pass\n")
    assert import_cycles(pkg) == []


def test_no_import_runs_up_the_layers():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    package = REPO_ROOT / "mpt_utils"
    modules = {p.relative_to(package).parts[0].removesuffix(".py") for p in package.glob("*") if p.name != "__init__.py"
               and (p.suffix == ".py" or p.is_dir() and any(p.glob("*.py")))}  # weights/ holds data, no code
    assert modules == set(layer), "place every module of mpt_utils in LAYERS"
    upward = []
    for path in package.rglob("*.py"):
        if path.name == "__main__.py":  # an entry point is run, never imported: it sits above every layer
            continue
        relative = path.relative_to(package)
        own = relative.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for imported in _mpt_imports(path, ["mpt_utils", *relative.parts[:-1]]):
            if imported in layer and layer[imported] > layer[own]:
                upward.append(f"{relative} imports mpt_utils.{imported}")
    assert upward == []
