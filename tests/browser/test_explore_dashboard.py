"""The Explore notebook in a real browser: JupyterLab in headless Chromium drives the dashboard.

Headless tests of the widget callbacks cannot see what a learner sees. The most common way a
widget notebook breaks is a dashboard that shows "Loading widget..." or "Error displaying widget"
because the JupyterLab front end of ipywidgets is missing or does not match the kernel's
ipywidgets. This test starts JupyterLab (fast mode, a private port, a token, a scratch copy of
the notebook and a fresh run cache), opens notebook 3 in Debian's Chromium driven by Playwright,
runs all cells, checks that the dashboard renders as widgets, moves a slider and a dropdown,
presses Run, waits for the progress bar to finish and checks that the plot changed. Screenshots
before and after go to ``test-artifacts/browser/`` (git-ignored). At the end the server and its
kernels are shut down and the test checks that no process is left behind.

Run it with ``make test-browser``; ``make test`` runs it when Chromium is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "03_explore.ipynb"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
#: Seconds to wait for the kernel to run every cell (it trains in fast mode) and for one Run.
CELLS_TIMEOUT = 600
RUN_TIMEOUT = 600

if CHROMIUM is None:
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium); browser test skipped",
                allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(base: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def processes_mentioning(marker: str) -> list[tuple[int, str]]:
    """Processes whose command line or environment mentions ``marker`` (our scratch folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found.append((int(entry.name), cmdline.strip()[:160]))
    return found


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """JupyterLab on a free loopback port with a token, serving a scratch copy of notebook 3."""
    scratch = tmp_path_factory.mktemp("jupyterlab")
    root = scratch / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns("exercises", ".ipynb_checkpoints"))
    port, token = free_port(), os.urandom(16).hex()
    env = dict(os.environ, LTHKIT_FAST="1", LTHKIT_CACHE=str(scratch / "cache"),
               JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
               IPYTHONDIR=str(scratch / "ipython"), LTHKIT_BROWSER_TEST=str(scratch))
    log = open(scratch / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.workspaces_dir={scratch / 'workspaces'}", "--LabApp.news_url=", "--ServerApp.open_browser=False",
         *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            api(base, token, "/api/status")
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start (exit {server.poll()}); log: "
                            f"{(scratch / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield {"base": base, "token": token, "scratch": scratch}

    # Shut down: kernels first (they run in their own process sessions), then the server.
    try:
        for kernel in api(base, token, "/api/kernels") or []:
            api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        api(base, token, "/api/shutdown", method="POST")
    except OSError:
        pass
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    log.close()
    deadline = time.time() + 20
    while processes_mentioning(str(scratch)) and time.time() < deadline:
        time.sleep(0.5)
    leftovers = processes_mentioning(str(scratch))
    for pid, _ in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftovers, f"processes left behind after shutting JupyterLab down: {leftovers}"


def widget_front_end_problem(page) -> str | None:
    """A one-line diagnosis when widgets render as text or an error instead of widgets."""
    import ipywidgets

    text = page.locator(".jp-OutputArea-output").all_inner_texts()
    joined = "\n".join(text)
    for symptom in ("Error displaying widget", "Loading widget...", "Dashboard(", "VBox(children", "lthkit Dashboard"):
        if symptom in joined:
            try:
                from importlib.metadata import version
                front_end = f"jupyterlab_widgets {version('jupyterlab_widgets')}"
            except Exception:  # noqa: BLE001 - diagnosis only
                front_end = "no jupyterlab_widgets"
            return (f"the dashboard rendered as {symptom!r} instead of widgets: the JupyterLab widget front end is "
                    f"missing or does not match the kernel (ipywidgets {ipywidgets.__version__}, {front_end}); "
                    f"reinstall requirements.txt so that jupyterlab_widgets matches ipywidgets")
    return None


def accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to start; take the notebook's own (Python 3)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count() and dialog.first.is_visible():
        dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()


def wait_until(condition, timeout: float, what: str, page=None, interval: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if page is not None:
            accept_kernel_dialog(page)
            problem = widget_front_end_problem(page)
            if problem:
                pytest.fail(problem)
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_dashboard_runs_in_jupyterlab(jupyter_lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = f"{jupyter_lab['base']}/lab/tree/{NOTEBOOK.name}?token={jupyter_lab['token']}"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(url)
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
            # Wait for the kernel before running (the status bar names it once it has started).
            wait_until(lambda: "Idle" in page.inner_text("#jp-main-statusbar"), 120, "the kernel to start", page)
            time.sleep(2)  # let a late kernel dialog appear before the menu is used
            accept_kernel_dialog(page)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            accept_kernel_dialog(page)

            dashboard = page.locator(".jp-OutputArea-output").filter(
                has=page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$"))).first
            wait_until(lambda: dashboard.count() > 0 and dashboard.locator(".widget-image").count() > 0,
                       CELLS_TIMEOUT, "the dashboard's widgets to render", page)
            assert dashboard.locator(".widget-slider").count() >= 3, "the sliders did not render as widgets"
            assert dashboard.locator(".widget-dropdown select").count() >= 3, "the dropdowns did not render"
            assert dashboard.locator(".widget-hprogress").count() >= 1, "no progress bar in the dashboard"
            # Every cell has run when no prompt shows [*] any more.
            wait_until(lambda: page.locator(".jp-InputPrompt", has_text="[*]").count() == 0
                       and page.locator(".jp-InputPrompt", has_text="[ ]").count() == 0,
                       CELLS_TIMEOUT, "all cells to finish", page)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert "Traceback" not in " ".join(errors.all_inner_texts()), "a cell raised an error"

            plot = dashboard.locator(".widget-image").first
            plot.scroll_into_view_if_needed()
            dashboard.screenshot(path=str(ARTIFACTS / "dashboard-before.png"))
            before = plot.screenshot()
            status_before = dashboard.locator(".widget-html").nth(1).inner_text()

            # A slider: the target sparsity, moved with the keyboard like a learner would.
            sparsity = dashboard.locator(".widget-slider", has_text="target sparsity").first
            handle = sparsity.locator(".noUi-handle").first
            readout_before = sparsity.locator(".widget-readout").inner_text()
            handle.focus()
            for _ in range(5):
                handle.press("ArrowRight")
            wait_until(lambda: sparsity.locator(".widget-readout").inner_text() != readout_before, 30,
                       "the sparsity slider to move", page)
            # A dropdown: global instead of layer-wise pruning.
            scope = dashboard.locator(".widget-dropdown", has_text="pruning scope").locator("select")
            scope.select_option(label="global")
            # Moving controls trains nothing: the button stays enabled and the plot stays put.
            wait_until(lambda: dashboard.locator(".widget-html").nth(1).inner_text() != status_before, 30,
                       "the status line to notice the new selection", page)
            assert "has not run yet" in dashboard.locator(".widget-html").nth(1).inner_text()

            run = dashboard.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$"))
            run.click()
            wait_until(lambda: run.is_disabled(), 60, "the Run button to start a run", page, interval=0.2)
            wait_until(lambda: not run.is_disabled(), RUN_TIMEOUT, "the run to finish", page)
            bar = dashboard.locator(".widget-hprogress .progress-bar").first
            assert "progress-bar-success" in (bar.get_attribute("class") or ""), "the progress bar did not finish"
            assert "trained in" in dashboard.locator(".widget-html").nth(1).inner_text()

            plot.scroll_into_view_if_needed()
            wait_until(lambda: plot.screenshot() != before, 60, "the plot to change", page)
            dashboard.screenshot(path=str(ARTIFACTS / "dashboard-after.png"))
            assert widget_front_end_problem(page) is None
        finally:
            page.screenshot(path=str(ARTIFACTS / "page-final.png"), full_page=True)
            browser.close()
