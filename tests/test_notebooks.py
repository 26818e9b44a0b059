"""Notebook conventions (fast) and every notebook executed with papermill on the ci profile."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mpt_utils.notebooks import build_parser, find_notebooks, kernel_manager_class, notebook_parameters
from mpt_utils.output_checks import figure_problems, output_problems
from mpt_utils.runtime import HEADLESS_ENV, REPO_ROOT, REPO_URL

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
README = (REPO_ROOT / "README.md").read_text()
NOTEBOOKS = find_notebooks(NOTEBOOK_DIR)
EXPECTED = ["00_overview", "01_data_loading", "02_rank_pooling", "03_eulerian_magnification",
            "04_gaussian_tokenization", "05_group_adapter", "06_loso_training", "07_analysis"]


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_the_ordered_notebooks_are_all_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_a_unique_id(path):
    """nbformat 4.5 needs cell ids; without them every run prints a MissingIDFieldWarning."""
    ids = [cell.get("id") for cell in cells(path)]
    assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: cells without an id, or ids used twice"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped(path):
    for cell in cells(path):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_badge_colab_cell_parameters_and_session(path):
    nb = cells(path)
    first = source(nb[0])
    assert nb[0]["cell_type"] == "markdown" and "Open In Colab" in first
    slug = REPO_URL.split("github.com/")[1]
    assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name}" in first
    colab = source(nb[1])
    assert 'if "google.colab" in sys.modules:' in colab and f'REPO_URL = "{REPO_URL}"' in colab
    assert "drive.mount" in colab and "MPT_HOME" in colab
    tagged = [i for i, c in enumerate(nb) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [2], f"{path.name}: one parameters cell, third from the top"
    names = {t.id for node in ast.parse(source(nb[2])).body for t in getattr(node, "targets", [])}
    runner_args = build_parser().parse_args([])
    assert names == set(notebook_parameters(runner_args, Path("out"))), "parameters differ from the runner's"
    derived = source(nb[3])
    assert f'start_notebook(\n    "{path.stem}"' in derived or f'start_notebook("{path.stem}"' in derived


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_seeds_devices_and_figures_go_through_the_helpers(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    for forbidden in ["manual_seed", "np.random.seed", 'torch.device("cuda")', ".cuda()", "savefig"]:
        assert forbidden not in code, f"{path.name} uses {forbidden}; use the mpt_utils helpers"
    if "plt.subplots" in code or "_figure(" in code or "filmstrip(" in code:
        assert "session.save(" in code


def test_ruff_is_clean_on_package_notebooks_and_tests():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "mpt_utils", "notebooks", "tests", "benchmarks"],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def ci_output(tmp_path_factory):
    """One output folder for the ci run of every notebook, laid out as the runner lays it out: executed notebooks
    in ``notebooks/``, each notebook's figures in ``<notebook name>/``. The book test reads it afterwards."""
    output = tmp_path_factory.mktemp("notebooks_ci")
    (output / "notebooks").mkdir()
    return output


def execute_on_ci(path: Path, ci_output: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one notebook on the ci profile into ``ci_output`` as the runner does (its parameters, headless)."""
    import papermill as pm

    # one working folder for all notebooks, as for a user: 07 reuses 06's runs, which name 04's backbone file
    monkeypatch.setenv("MPT_HOME", str(ci_output / "home"))
    monkeypatch.setenv("MPT_CACHE_DIR", str(ci_output / "home" / "cache"))
    monkeypatch.setenv(HEADLESS_ENV, "1")  # as the runner does: text progress bars
    parameters = notebook_parameters(build_parser().parse_args(["--profile", "ci"]), ci_output)
    try:
        pm.execute_notebook(str(path), str(ci_output / "notebooks" / path.name), parameters=parameters,
                            cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=False,
                            kernel_manager_class=kernel_manager_class())
    except pm.PapermillExecutionError as exc:
        pytest.fail(f"{path.name} failed in cell [{exc.exec_count}]:\n{exc.ename}: {exc.evalue}\n"
                    + re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(exc.traceback)), pytrace=False)


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_the_ci_profile(path, ci_output, monkeypatch):
    execute_on_ci(path, ci_output, monkeypatch)
    figures = list((ci_output / path.stem).glob("*.png"))
    assert figures, f"{path.name} saved no figure under its output folder"
    problems = output_problems(ci_output / "notebooks" / path.name) + figure_problems(ci_output / path.stem)
    assert not problems, f"{path.name} does not read well:\n" + "\n".join(problems)


@pytest.mark.notebooks
def test_papermills_own_command_writes_the_runners_figures_without_widgets(ci_output, tmp_path, monkeypatch):
    """The README's plain papermill command: headless detected by the kernel itself (no runner, no MPT_HEADLESS),
    the same PNG files as the runner's way above. Compared with that ci run of the same notebook, not a second one."""
    line = next(line for line in README.splitlines() if line.startswith("papermill "))
    args = shlex.split(line.partition("#")[0])
    notebook = REPO_ROOT / args[1]
    if not (ci_output / "notebooks" / notebook.name).exists():  # this test alone: the runner's way first
        with monkeypatch.context() as patch:
            execute_on_ci(notebook, ci_output, patch)
    home = tmp_path / "home"
    environment = {**os.environ, "MPT_HOME": str(home), "MPT_CACHE_DIR": str(home / "cache")}
    environment.pop(HEADLESS_ENV, None)
    environment.pop("MPT_DATA_ROOT", None)
    command = [sys.executable, "-m", "papermill", str(notebook), str(tmp_path / "out.ipynb"), *args[3:]]
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    papermill_pngs = sorted(p.name for p in (home / "outputs" / notebook.stem).glob("*.png"))
    assert papermill_pngs == sorted(p.name for p in (ci_output / notebook.stem).glob("*.png"))
    assert "interactive_static_default.png" in papermill_pngs
    executed = (tmp_path / "out.ipynb").read_text()
    assert "application/vnd.jupyter.widget-view+json" not in executed  # no slider: the kernel knew it was headless


BOOK_PAGE_CHECKS = """
const done = arguments[arguments.length - 1];
const ready = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
ready.then(() => done({
    broken_images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    equations: document.querySelectorAll("mjx-container").length,
    title: document.title,
}));
"""


@pytest.mark.notebooks
@pytest.mark.browser
def test_the_book_builds_from_the_executed_notebooks_and_reads_offline_in_a_browser(ci_output, chromium,
                                                                                     screenshots):
    """Every page opens without console errors, every image loads, every internal link resolves, the equations are
    typeset by the bundled MathJax; the site loads nothing from outside itself."""
    import functools
    import http.server
    import threading
    import time
    from urllib.parse import urlparse

    from mpt_utils.book import build_book

    executed = sorted((ci_output / "notebooks").glob("*.ipynb"))
    if len(executed) != len(NOTEBOOKS):
        pytest.fail(f"the book test reads the ci run of all {len(NOTEBOOKS)} notebooks (run the whole module); "
                    f"found {len(executed)}", pytrace=False)
    start = time.perf_counter()
    book = build_book(ci_output)
    print(f"book built in {time.perf_counter() - start:.1f} s")
    pages = sorted(book.glob("*.html"))
    assert {p.stem for p in pages} >= {"index", *(p.stem for p in NOTEBOOKS)}
    external = re.compile(r"<(?:script|link|img)[^>]+(?:src|href)=\"(?:https?:)?//", re.I)
    for page in pages:
        assert not external.search(page.read_text(encoding="utf-8")), f"{page.name} loads something from the network"

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        chromium.get_log("browser")  # forget what earlier tests logged
        for page in pages:
            chromium.get(base + page.name)
            found = chromium.execute_async_script(BOOK_PAGE_CHECKS)
            errors = [e["message"] for e in chromium.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], f"{page.name}: console errors {errors}"
            assert found["broken_images"] == [], f"{page.name}: images that did not load {found['broken_images']}"
            for link in found["links"]:
                url = urlparse(link)
                if link.startswith(base) and url.path.strip("/"):
                    assert (book / url.path.lstrip("/")).exists(), f"{page.name}: broken link {link}"
            if page.stem == "02_rank_pooling":  # rank pooling's closed form and the zero-centred scaling
                assert found["equations"] >= 2, f"{page.name}: the equations were not typeset"
            if page.stem == "index":
                chromium.save_screenshot(str(screenshots / "book_landing.png"))
                assert "MPT" in found["title"]
            if page.stem == "02_rank_pooling":
                chromium.save_screenshot(str(screenshots / "book_chapter_02.png"))
    finally:
        server.shutdown()
    landing = (book / "index.html").read_text(encoding="utf-8")
    for chapter in NOTEBOOKS:  # the landing page itself (not a redirect) leads to every chapter, in order
        assert f'href="{chapter.stem}.html"' in landing
    assert "profile ci" in landing and "paper: MPT" in landing  # the results beside the paper's, labelled
    for chapter in NOTEBOOKS:  # every chapter says what its figures and tables come from
        assert "Every figure and table of this chapter: profile ci" in (book / f"{chapter.stem}.html").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_only_what_the_packages_export(path):
    """Teaching code uses the public API: a subpackage's exports (its ``__all__``), or a top-level module."""
    import importlib

    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mpt_utils"):
            parts = node.module.split(".")
            assert len(parts) <= 2, f"{path.name} imports from {node.module}: import from mpt_utils.{parts[1]}"
            module = importlib.import_module(node.module)
            public = getattr(module, "__all__", None)
            for alias in node.names:
                assert not alias.name.startswith("_"), f"{path.name} imports the private {node.module}.{alias.name}"
                if public is not None:
                    assert alias.name in public, f"{path.name}: {node.module} does not export {alias.name}"
    assert "._" not in re.sub(r"\b__\w+__\b", "", code.replace("self._", "")), f"{path.name} calls a private member"


def test_output_problems_reads_outputs_as_a_learner_sees_them(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    start, end = "\rclips:   0%|          | 0/8 [00:00<?, ?it/s]", "\rclips: 100%|##########| 8/8 [00:01<00:00]\n"
    cells = [
        new_code_cell("a", outputs=[new_output("stream", name="stderr", text=start),  # two outputs, one line shown:
                                    new_output("stream", name="stderr", text=end)]),  # it ends finished, fine
        new_code_cell("b", outputs=[new_output("stream", name="stderr", text="clips:  40%|####      | 4/10\n")]),
        new_code_cell("c", outputs=[new_output("stream", name="stderr",
                                               text="/x/loaders.py:411: UserWarning: dropped 5 samples\n")]),
        new_code_cell("d", outputs=[new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "m"}, "text/plain": "  0%|  | 0/64 [00:00<?]"})]),
        new_code_cell("e", outputs=[new_output("error", ename="ValueError", evalue="bad", traceback=[])]),
        new_code_cell("f", outputs=[new_output("stream", name="stdout", text="pooled F1 0.22 against chance 0.20\n")]),
    ]
    for i, cell in enumerate(cells, 1):
        cell.execution_count = i
    nbformat.write(new_notebook(cells=cells), tmp_path / "nb.ipynb")
    problems = output_problems(tmp_path / "nb.ipynb")
    assert [p.split("]")[0] + "]" for p in problems] == ["[cell 2]", "[cell 3]", "[cell 4]", "[cell 5]"]
    assert "unfinished" in problems[0] and "UserWarning" in problems[1] and "widget" in problems[2]
