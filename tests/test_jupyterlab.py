"""The interactive views, as a learner uses them: JupyterLab in headless Chromium runs notebooks 01 and 03 on the
ci profile, moves a slider, and the image on screen must change."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from mpt_utils.notebooks import build_parser, notebook_parameters
from mpt_utils.runtime import HEADLESS_ENV, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.notebooks]

#: Runs every cell of the open notebook once its kernel is up; answers true when all have run, else the error.
RUN_ALL = """
const done = arguments[arguments.length - 1];
const app = window.jupyterapp;
const panel = app.shell.currentWidget;
panel.sessionContext.ready
    .then(() => app.commands.execute("notebook:run-all-cells"))
    .then(ok => done(ok === false ? "a cell failed" : true))
    .catch(error => done(String(error)));
"""

#: The interactive view's slider whose label is arguments[0], and the image its output shows now.
VIEW = """
const label = arguments[0];
const view = [...document.querySelectorAll(".widget-interact")].find(v =>
    [...v.querySelectorAll(".widget-label")].some(l => l.textContent.trim() === label));
if (!view) return null;
const slider = [...view.querySelectorAll(".widget-slider")].find(s =>
    s.querySelector(".widget-label").textContent.trim() === label);
const image = view.querySelector(".widget-output img");
return {value: slider.querySelector(".widget-readout").textContent.trim(), image: image ? image.src : null};
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _errors_in(notebook) -> list[str]:
    """Error outputs of an executed notebook read back from disk (what JupyterLab saved)."""
    import nbformat

    return [f"{o['ename']}: {o['evalue']}" for c in nbformat.read(str(notebook), as_version=4).cells
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 (a free port, a token, no browser of its own) serving notebooks 01 and 03 with the
    ci profile injected into their parameters (papermill's prepare-only mode) and widgets on. Stopped however the
    tests end."""
    import papermill as pm

    root = tmp_path_factory.mktemp("lab")
    home = root / "home"
    parameters = {**notebook_parameters(build_parser().parse_args(["--profile", "ci"]), root / "outputs"),
                  "interactive": True}
    for name in ("01_data_loading.ipynb", "03_eulerian_magnification.ipynb"):
        pm.execute_notebook(str(REPO_ROOT / "notebooks" / name), str(root / name), parameters=parameters,
                            prepare_only=True, progress_bar=False)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "MPT_HOME": str(home), "MPT_CACHE_DIR": str(home / "cache"),
           "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"), "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"), "JUPYTER_RUNTIME_DIR": str(root / "runtime")}
    env.pop(HEADLESS_ENV, None)  # this kernel has a front end: widgets, live bars
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url="]
    if os.geteuid() == 0:  # CI machines and containers run as root; JupyterLab refuses that unless told
        command.append("--allow-root")
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if server.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            server.poll()
        if server.returncode is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}: {(root / 'jupyterlab.log').read_text()[-2000:]}",
                        pytrace=False)
        yield {"base": base, "token": token, "root": root}
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the server and the kernels it started
            try:
                os.killpg(server.pid, sig)
                server.wait(timeout=20)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _open_and_run(chromium, lab, name: str, screenshots) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    chromium.get(f"{lab['base']}/lab/tree/{name}?token={lab['token']}")
    WebDriverWait(chromium, 120).until(lambda d: d.execute_script(
        "const w = window.jupyterapp && jupyterapp.shell.currentWidget;"
        "return !!(w && w.sessionContext) && w.title.label === arguments[0]", name))
    result = chromium.execute_async_script(RUN_ALL)
    if result is not True:
        chromium.save_screenshot(str(screenshots / f"lab_{name}.png"))
        chromium.execute_script("return jupyterapp.commands.execute('docmanager:save')")
        time.sleep(2)
        pytest.fail(f"{name} did not run in JupyterLab: {result}; {_errors_in(lab['root'] / name)}", pytrace=False)


def _move_slider_and_see_the_image_change(chromium, label: str) -> tuple[dict, dict]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    before = WebDriverWait(chromium, 120).until(lambda d: (v := d.execute_script(VIEW, label)) and v["image"] and v)
    handles = chromium.find_elements(By.CSS_SELECTOR, ".widget-interact .widget-slider")
    handle = next(h for h in handles if h.find_element(By.CSS_SELECTOR, ".widget-label").text.strip() == label)
    handle.find_element(By.CSS_SELECTOR, ".noUi-handle").send_keys(Keys.ARROW_RIGHT)  # one step up
    after = WebDriverWait(chromium, 120).until(
        lambda d: (v := d.execute_script(VIEW, label)) and v["image"] and v["image"] != before["image"] and v)
    return before, after


def test_the_magnification_view_redraws_when_alpha_moves(chromium, lab, screenshots):
    name = "03_eulerian_magnification.ipynb"
    _open_and_run(chromium, lab, name, screenshots)
    before, after = _move_slider_and_see_the_image_change(chromium, "alpha")
    assert float(after["value"]) > float(before["value"])
    assert after["image"] != before["image"]  # the picture on screen is another one
    chromium.save_screenshot(str(screenshots / "lab_03_alpha_moved.png"))


def test_the_frame_scrubber_shows_another_frame(chromium, lab, screenshots):
    name = "01_data_loading.ipynb"
    _open_and_run(chromium, lab, name, screenshots)
    before, after = _move_slider_and_see_the_image_change(chromium, "t")
    assert (int(before["value"]), int(after["value"])) == (0, 1)
    chromium.save_screenshot(str(screenshots / "lab_01_frame_1.png"))
