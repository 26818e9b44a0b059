"""Shared fixtures: small datasets in each real layout, a tiny synthetic set, isolated caches."""

from __future__ import annotations

import os
import re
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the network in tests

#: The test modules that take longest (minutes on two cores), started first, longest first (pyproject's addopts keep
#: this order: ``--no-loadscope-reorder``): on two workers they then run beside the many short modules instead of
#: after them. Measured in a clean-clone CI (the "longest modules" line that every run prints).
LONGEST_FIRST = ("test_notebooks.py", "test_learning.py", "test_executors.py", "test_calibration.py", "test_install.py",
                 "test_readme.py", "test_cli.py")
#: Modules whose tests share no costly module fixture: each of their tests may run on either worker (every other
#: module runs whole on one worker, so that its module-scoped fixtures are made once; see
#: :func:`pytest_xdist_make_scheduler`). test_readme's 37 commands
#: alone take about 400 s: on one worker they left the other idle at the end.
SPREAD = ("test_readme.py", "test_cli.py", "test_calibration.py")
#: The groups of the time report at the end of a run (``--durations`` names single tests): a test counts in the
#: first group whose marker it carries, else in "unit".
TIME_GROUPS = ("browser", "notebooks", "slurm", "install", "slow")
#: Where the time report is also written, a line "group seconds" each (``.ci/run`` prints it in its table of phases).
TIMES_ENV = "MPT_TEST_TIMES"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--latest", action="store_true",
                     help="also run the tests marked latest (the newest releases in a scratch venv, ~10 min)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the order within a module is kept
    if not config.getoption("--latest"):
        skip = pytest.mark.skip(reason="installs the newest releases: run with --latest -m latest")
        for item in items:
            if "latest" in item.keywords:
                item.add_marker(skip)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's scheduler by scope, the scope being a test module, or a single test of a module in SPREAD. (xdist's
    own ``--dist loadgroup`` cannot do this under pytest 9.2: it renames the tests through an attribute that pytest
    no longer reads, so every test became a scope of its own.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if Path(module).name in SPREAD else module

    return ModuleScheduling(config, log)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Seconds of test time by group (setup, call and teardown; summed over the workers, which run side by side)."""
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    modules: dict[str, float] = defaultdict(float)
    workers: dict[str, float] = defaultdict(float)  # the busiest worker's total is about the run's length
    for kind in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(kind, []):
            if not hasattr(report, "when"):
                continue
            group = next((g for g in TIME_GROUPS if g in report.keywords), "unit")
            seconds[group] += report.duration
            counts[group] += report.when == "call" or (report.when == "setup" and report.outcome == "skipped")
            modules[report.nodeid.split("::")[0]] += report.duration
            node = getattr(report, "node", None)  # the xdist worker that ran it (absent with -n 0)
            workers[node.gateway.id if node is not None else "main"] += report.duration
    if not seconds:
        return
    groups = sorted(seconds, key=seconds.get, reverse=True)
    terminalreporter.write_sep("-", "test time by group (seconds, summed over the workers)")
    for group in groups:
        terminalreporter.write_line(f"{group:>10}: {seconds[group]:7.0f} s in {counts[group]} tests")
    longest = sorted(modules, key=modules.get, reverse=True)[:8]  # what LONGEST_FIRST should start first
    terminalreporter.write_line("longest modules: " + ", ".join(f"{Path(m).name} {modules[m]:.0f} s" for m in longest))
    terminalreporter.write_line("per worker: " + ", ".join(f"{w} {workers[w]:.0f} s" for w in sorted(workers)))
    if os.environ.get(TIMES_ENV):
        Path(os.environ[TIMES_ENV]).write_text("".join(f"{g} {seconds[g]:.0f}\n" for g in groups))


def _use_home(patch: pytest.MonkeyPatch, home: Path) -> None:
    """Point the working folder and the preprocessing cache at ``home``; forget any data root."""
    patch.setenv("MPT_CACHE_DIR", str(home / "cache"))
    patch.setenv("MPT_HOME", str(home))
    patch.delenv("MPT_DATA_ROOT", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_home(tmp_path_factory):
    """Module- and session-scoped fixtures (a finished run, a tiny set) also stay out of the repository:
    they run before any function-scoped fixture, so they get a working folder of their own here."""
    home = tmp_path_factory.mktemp("mpt_session_home")
    with pytest.MonkeyPatch.context() as patch:
        _use_home(patch, home)
        yield home


@pytest.fixture
def says(capsys):
    """``with says(pattern): ...``: the block must tell the user, once, a message matching ``pattern`` (a regular
    expression) through :func:`mpt_utils.runtime.say_once`, in plain words: no warning, no source line."""
    from mpt_utils.runtime import say_once

    @contextmanager
    def check(pattern: str = ".+"):
        say_once.cache_clear()
        capsys.readouterr()
        yield
        err = capsys.readouterr().err
        assert re.search(pattern, err), f"expected a message matching {pattern!r}, the block said {err!r}"
        assert "Warning" not in err and ".py:" not in err, f"a message reads like a warning: {err!r}"

    return check


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own preprocessing cache and working folder."""
    _use_home(monkeypatch, tmp_path_factory.mktemp("mpt_home"))


def write_frames(folder: Path, numbers, size=(20, 24), suffix=".jpg", prefix="reg_img", gray=False,
                 value=None) -> None:
    """Frames whose grey level is the frame number (mod 256), so reads can be checked exactly.

    PNG/BMP are lossless; for JPEG the constant images survive compression exactly as well.
    """
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    for n in numbers:
        level = (n % 256) if value is None else value(n)
        image = np.full((h, w) if gray else (h, w, 3), level, np.uint8)
        cv2.imwrite(str(folder / f"{prefix}{n}{suffix}"), image)


def write_xlsx(path: Path, header: list[str], rows: list[list], title_rows: int = 0) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for i in range(title_rows):
        sheet.append([f"SAMM title line {i}"] + [None] * (len(header) - 1))
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)


CASME_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                "Action Units", "Estimated Emotion"]


def make_casme2(root: Path, frames_dir: str = "Cropped", csv: bool = False) -> Path:
    """A CASME II download in miniature, with its quirks (apex '/', 4+L10 AUs, an unnamed column)."""
    rows = [
        [1, "EP02_01f", 46, 52, 59, None, "4+L10", "disgust"],  # 14 frames: shorter than T=16
        [1, "EP03_02", 10, "/", 90, None, "12", "happiness"],  # apex not coded
        [2, "EP01_01", 5, 20, 40, None, "1+2", "surprise"],
        [2, "EP05_03", 101, 110, 130, None, "14", "repression"],
        [3, "EP07_01", 1, 8, 16, None, "R4", "others"],
        [3, "EP09_01", 1, 8, 16, None, "1+4", "fear"],  # outside the 5-class scheme
    ]
    spans = {"EP02_01f": range(46, 60), "EP03_02": range(1, 101), "EP01_01": range(3, 43),
             "EP05_03": range(100, 132), "EP07_01": range(1, 17), "EP09_01": range(1, 17)}
    for r in rows:
        write_frames(root / frames_dir / f"sub{r[0]:02d}" / r[1], spans[r[1]])
    if csv:
        import pandas as pd

        # the older sheet version: column names without spaces, "Emotion" instead of "Estimated Emotion"
        table = pd.DataFrame([r[:5] + r[6:] for r in rows],
                             columns=["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "ActionUnits",
                                      "Emotion"])
        table.to_csv(root / "CASME2-coding-20140508.csv", index=False)
    else:
        write_xlsx(root / "CASME2-coding-20190701.xlsx", CASME_HEADER, rows)
    return root


def make_samm(root: Path) -> Path:
    """SAMM in miniature: title rows above the header, zero-padded subjects, grayscale PNG frames."""
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Type", "Action Units", "Notes", "Estimated Emotion"]
    rows = [
        ["006", "006_1_2", 1, 5562, 5588, 5605, 44, "Micro - 1/2", "R14", "", "Contempt"],
        [7, "007_3_1", 3, 200, 215, 240, 41, "Micro - 1/2", "4+7", "", "Anger"],
        ["011", "011_2_3", 2, 50, -1, 90, 41, "Micro - 1/2", "12", "", "Other"],
        ["011", "011_4_1", 4, 10, 20, 30, 21, "Micro - 1/2", "9", "", "Disgust"],
    ]
    spans = {"006_1_2": range(5560, 5608), "007_3_1": range(198, 242), "011_2_3": range(48, 93),
             "011_4_1": range(8, 33)}
    for r in rows:
        subject = f"{int(r[0]):03d}"
        write_frames(root / "SAMM_CROP" / subject / r[1], spans[r[1]], suffix=".png", prefix=f"{subject}_0",
                     gray=True)
    write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", header, rows, title_rows=12)
    return root


def make_smic(root: Path) -> Path:
    """SMIC-HS in miniature: HS/sN/micro/<emotion>/<clip>/imageN.bmp, no sheet."""
    clips = {("s1", "positive", "s1_po_01"): range(586, 606), ("s1", "negative", "s1_ne_02"): range(10, 21),
             ("s2", "surprise", "s2_sur_01"): range(1000, 1030), ("s2", "negative", "s2_ne_01"): range(50, 70)}
    for (subject, emotion, clip), numbers in clips.items():
        write_frames(root / "SMIC_all_cropped" / "HS" / subject / "micro" / emotion / clip, numbers,
                     suffix=".bmp", prefix="image")
    return root


@pytest.fixture
def casme2_root(tmp_path) -> Path:
    return make_casme2(tmp_path / "CASME2")


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A small synthetic dataset (4 subjects, 20 clips) shared by the slower tests."""
    from mpt_utils.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic") / "tiny", n_subjects=4, n_clips=20, seed=0,
                          progress=False)


@pytest.fixture(scope="session")
def tiny_samples(tiny_synthetic):
    from mpt_utils.data import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("synthetic", tiny_synthetic)


# --- a real browser: the system's headless Chromium through Selenium ---------------------------------------------

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium, its console log
    kept. Nothing is downloaded: the browser and its driver are the system's. Outside CI a missing browser skips
    the test with what to install; under ``CI=true`` it fails the run with the reason."""
    import shutil

    def unavailable(reason: str):
        message = f"{reason}: the browser tests need Chromium and its driver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)

    browser = next((p for p in CHROMIUM if Path(p).exists()), shutil.which("chromium"))
    driver_path = next((p for p in CHROMEDRIVER if Path(p).exists()), shutil.which("chromedriver"))
    if not browser or not driver_path:
        unavailable("no Chromium or chromedriver found")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:  # the browser did not start: say why
        unavailable(f"Chromium did not start ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    driver.set_script_timeout(600)
    yield driver
    driver.quit()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where a browser test saves its screenshots: ``$MPT_TEST_OUTPUT`` when set (to keep them), else the test's
    temporary folder."""
    folder = Path(os.environ.get("MPT_TEST_OUTPUT") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
