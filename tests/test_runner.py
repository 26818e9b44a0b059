"""The notebook runner: its options, its summary, and a failing notebook."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mpt_utils.notebooks import find_notebooks, main


def _notebook(path, *sources):
    cells = [{"cell_type": "code", "id": f"cell-{i}", "metadata": {"tags": ["parameters"]} if i == 0 else {},
              "execution_count": None, "outputs": [], "source": s} for i, s in enumerate(sources)]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_help_documents_the_options():
    out = subprocess.run([sys.executable, "-m", "mpt_utils.notebooks", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ["--profile", "--only", "--output", "--data-root", "--weights", "--no-pretrained"]:
        assert option in out.stdout


@pytest.mark.notebooks
def test_a_failing_notebook_stops_the_run_and_names_the_cell(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    params = "profile = 'quick'\noutput_root = None"
    _notebook(folder / "00_fine.ipynb", params, "x = 1")
    _notebook(folder / "01_broken.ipynb", params, "y = 2", "raise ValueError('deliberate failure')")
    _notebook(folder / "02_never.ipynb", params, "z = 3")
    code = main(["--notebooks-dir", str(folder), "--output", str(tmp_path / "out"), "--profile", "ci"])
    err = capsys.readouterr()
    assert code == 1
    # papermill inserts its injected-parameters cell, so the failing cell is the fourth executed
    assert "01_broken.ipynb failed in cell [4] raise ValueError('deliberate failure')" in err.err
    assert "ValueError" in err.err  # the cell's traceback is printed
    assert str(tmp_path / "out" / "notebooks" / "01_broken.ipynb") in err.err
    assert "00_fine" in err.out and "ok" in err.out and "not run" in err.out
    assert not (tmp_path / "out" / "notebooks" / "02_never.ipynb").exists()


def test_only_selects_by_number_and_reports_unknown(tmp_path):
    for name in ["00_a.ipynb", "01_b.ipynb", "notes.ipynb"]:
        _notebook(tmp_path / name, "p = 1")
    assert [p.name for p in find_notebooks(tmp_path, ["1"])] == ["01_b.ipynb"]
    with pytest.raises(ValueError, match="07"):
        find_notebooks(tmp_path, ["07"])
    assert main(["--notebooks-dir", str(tmp_path), "--only", "07"]) == 2


@pytest.mark.notebooks
def test_a_clean_run_prints_no_warning_lines(tmp_path):
    """Kernels talk over IPC sockets: no "[IPKernelApp] WARNING | Kernel is running over TCP" on every notebook."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_fine.ipynb", "profile = 'quick'\noutput_root = None", "print('fine')")
    out = subprocess.run([sys.executable, "-m", "mpt_utils.notebooks", "--notebooks-dir", str(folder), "--output",
                          str(tmp_path / "out"), "--profile", "ci"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in (out.stdout + out.stderr).splitlines() if "WARNING" in line or "Warning" in line]
    assert warnings == [], warnings
    assert "00_fine" in out.stdout
