"""The Explore notebook in a real browser: JupyterLab in headless Chromium drives the dashboard.

Headless tests of the widget callbacks cannot see what a learner sees. The most common way a
widget notebook breaks is a dashboard that shows "Loading widget..." or "Error displaying widget"
because the JupyterLab front end of ipywidgets is missing or does not match the kernel's
ipywidgets. This test starts JupyterLab (fast mode, a private port, a token, a scratch copy of
the notebook and a fresh run cache), opens notebook 3 in Debian's Chromium driven by Playwright,
runs all cells, checks that the dashboard renders as widgets, moves a slider and a dropdown,
presses Run, waits for the run to finish and checks that the plot changed and that every
progress bar rendered inside the dashboard. Screenshots before and after go to
``test-artifacts/browser/`` (git-ignored). At the end the server and its kernels are shut down
and the test checks that no process is left behind.

It waits only for end states (all cells numbered, the status line saying the run trained, the
plot's new image loaded), never for transient ones such as the Run button's disabled flicker,
and never sleeps: every wait is a Playwright wait on a condition, or a blocking wait on an
event (the server's "running at" line, a process's exit). Elements are found by role, label or
the dashboard's stable ``lthkit-...`` CSS classes (see :class:`lthkit.course.dashboard.Dashboard`), never
by position. ``tests/browser/soak.sh`` runs it repeatedly, also on busy cores.

Run it with ``make test-browser``; ``make test`` runs it when Chromium is installed.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
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
#: Seconds to wait for JupyterLab to start, for a kernel, and for the front end to show a change.
#: Bounds, not delays: each wait ends as soon as its end state shows. A change can queue several
#: redraws in the kernel (one per slider step), which took over 60 s once on a 2-core machine
#: loaded by a parallel test suite, so the bound is generous.
SERVER_TIMEOUT = 120
UI_TIMEOUT = 180
#: JupyterLab settings of the scratch server: every cell stays in the page (no windowing, so
#: the cells' prompts can all be read), and no news or update pop-ups over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}

if CHROMIUM is None:
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium); browser test skipped",
                allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


#: What the JupyterLab launcher prints once its port accepts connections.
LISTENING = "lthkit-browser-test: accepting connections"
#: ``python -m jupyterlab``, plus that line. The server binds its port in a callback that its
#: initialization queues on the event loop (after it logs "running at", so that log line comes
#: too early); a callback queued after initialization runs after that one.
LAUNCH_JUPYTERLAB = f"""
import sys
from jupyterlab.labapp import LabApp
server = LabApp.initialize_server(argv=sys.argv[1:])
server.io_loop.add_callback(lambda: print({LISTENING!r}, flush=True))
server.start()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(base: str, token: str, path: str, method: str = "GET", body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", method=method, data=data,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = response.read()
    return json.loads(answer) if answer else None


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


def wait_for_exit(pids, timeout: float) -> None:
    """Block until every process in ``pids`` has exited or ``timeout`` passed (a pidfd each, no polling)."""
    handles = {}
    for pid in pids:
        try:
            handles[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    try:
        while handles and time.monotonic() < deadline:
            ready, _, _ = select.select(list(handles), [], [], deadline - time.monotonic())
            for fd in ready:
                os.close(fd)
                del handles[fd]
    finally:
        for fd in handles:
            os.close(fd)


def reap(server: subprocess.Popen, copier: threading.Thread, scratch: Path, what: str) -> None:
    """Wait for a server asked to stop (killing its group after 30 s), then check no process of ``scratch`` is left."""
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    copier.join(timeout=10)
    wait_for_exit([pid for pid, _ in processes_mentioning(str(scratch))], timeout=20)
    leftovers = processes_mentioning(str(scratch))
    for pid, _ in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftovers, f"processes left behind after {what}: {leftovers}"


def scratch_notebooks(root: Path) -> None:
    """Copy the course notebooks to ``root`` without their saved outputs and execution counts.

    A cell's prompt then shows a number only once this session's kernel has run it, so "every
    prompt is numbered" is the end state of Run All Cells, and no saved output can stand in
    for one the kernel has to produce.
    """
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns("exercises", "mywork", ".ipynb_checkpoints"))
    for path in root.glob("*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notebook.get("metadata", {}).pop("widgets", None)
        path.write_text(json.dumps(notebook, indent=1))


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """JupyterLab on a free loopback port with a token, serving a scratch copy of notebook 3."""
    scratch = tmp_path_factory.mktemp("jupyterlab")
    root = scratch / "notebooks"
    scratch_notebooks(root)
    for name, settings in LAB_SETTINGS.items():
        path = scratch / "config" / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    port, token = free_port(), os.urandom(16).hex()
    env = dict(os.environ, LTHKIT_FAST="1", LTHKIT_CACHE=str(scratch / "cache"),
               JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(scratch / "config" / "lab" / "user-settings"),
               IPYTHONDIR=str(scratch / "ipython"), LTHKIT_BROWSER_TEST=str(scratch))
    log_path = scratch / "jupyterlab.log"
    server = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_JUPYTERLAB, "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.workspaces_dir={scratch / 'workspaces'}", "--LabApp.news_url=", "--ServerApp.open_browser=False",
         *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    # Wait for the launcher's line saying the port accepts connections (or for the server to end).
    listening = threading.Event()

    def copy_log():
        with open(log_path, "wb") as log:
            for line in server.stdout:
                log.write(line)
                log.flush()
                if line.startswith(LISTENING.encode()):
                    listening.set()
        listening.set()  # the server ended: stop waiting

    copier = threading.Thread(target=copy_log, daemon=True)
    copier.start()
    if not listening.wait(SERVER_TIMEOUT) or server.poll() is not None:
        server.kill()
        server.wait()
        pytest.fail(f"JupyterLab did not start (exit {server.poll()}); log: {log_path.read_text()[-2000:]}")
    api(base, token, "/api/status")
    yield {"base": base, "token": token, "scratch": scratch}

    # Shut down: kernels first (they run in their own process sessions), then the server.
    try:
        for kernel in api(base, token, "/api/kernels") or []:
            api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        api(base, token, "/api/shutdown", method="POST")
    except OSError:
        pass
    reap(server, copier, scratch, "shutting JupyterLab down")


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


#: True once every code cell of the open notebook shows an execution count ([1]:, [2]:, ...):
#: Run All Cells has finished (a queued or running cell shows [*]:, one not run yet [ ]:).
ALL_CELLS_RUN = """(count) => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
  return prompts.length === count && prompts.every(prompt => /^\\[\\d+\\]:$/.test(prompt.textContent.trim()));
}"""
#: Progress bars anywhere in the page that are not inside a dashboard, and the outputs of the
#: dashboard's cell: a bar that escaped would be a second output of that cell (or of another).
ESCAPED_BARS = """(dashboard) => {
  const bars = [...document.querySelectorAll('.widget-hprogress')].filter(bar => !bar.closest('.lthkit-dashboard'));
  const cell = dashboard.closest('.jp-OutputArea');
  const outputs = [...cell.querySelectorAll(':scope > .jp-OutputArea-child')]
      .filter(child => child.textContent.trim() || child.querySelector('img, .jupyter-widgets'));
  return {escaped: bars.map(bar => bar.parentElement.textContent.trim().slice(0, 120)),
          cell_outputs: outputs.map(child => child.textContent.trim().slice(0, 120))};
}"""
#: A lecture hall's projector: the dashboard's plot and Run must fit this viewport without scrolling.
PROJECTOR = {"width": 1024, "height": 768}


def normalized(text: str) -> str:
    """Text as a reader sees it (tqdm's bars use figure spaces), whitespace collapsed."""
    return " ".join(text.replace("\u2007", " ").split())


def assert_on_first_screen(page, dashboard, screenshot: str) -> None:
    """The plot (whole) and the Run button lie inside the viewport, unscrolled; a screenshot of that screen."""
    from playwright.sync_api import expect

    plot = dashboard.locator("img.lthkit-plot")
    run = dashboard.get_by_role("button", name="Run", exact=True)
    expect(plot).to_be_visible()
    page.wait_for_function("(plot) => plot.complete && plot.naturalWidth > 0", arg=plot.element_handle())
    page.screenshot(path=str(ARTIFACTS / screenshot))
    height = page.viewport_size["height"]
    for name, box in (("the plot", plot.bounding_box()), ("Run", run.bounding_box())):
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height + 1, \
            f"{name} is not on the first screen at {page.viewport_size}: {box}"


#: True once the plot shows a new image (another blob than ``before``), fully loaded.
PLOT_REPLACED = """([plot, before]) => plot.src !== before && plot.complete && plot.naturalWidth > 0"""


def test_dashboard_runs_in_jupyterlab(jupyter_lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base, token = jupyter_lab["base"], jupyter_lab["token"]
    code_cells = sum(cell["cell_type"] == "code" for cell in json.loads(NOTEBOOK.read_text())["cells"])
    # The notebook's kernel is started before the page opens: JupyterLab attaches to it and never
    # asks which kernel to start (a dialog that could appear at any moment).
    api(base, token, "/api/sessions", method="POST",
        body={"path": NOTEBOOK.name, "name": NOTEBOOK.name, "type": "notebook", "kernel": {"name": "python3"}})
    ui = UI_TIMEOUT * 1000
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=SERVER_TIMEOUT * 1000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            try:
                page.wait_for_function(ALL_CELLS_RUN, arg=code_cells, timeout=CELLS_TIMEOUT * 1000, polling=500)
            except PlaywrightTimeout:
                pytest.fail(widget_front_end_problem(page) or f"the cells did not all run in {CELLS_TIMEOUT} s")
            problem = widget_front_end_problem(page)
            assert problem is None, problem
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert "Traceback" not in " ".join(errors.all_inner_texts()), "a cell raised an error"

            dashboard = page.locator(".lthkit-dashboard")
            expect(dashboard).to_have_count(1)
            for part in ("status", "progress", "training-log", "plot", "errors", "run", "clear"):
                expect(dashboard.locator(f".lthkit-{part}")).to_have_count(1)
            assert dashboard.locator(".widget-slider").count() >= 3, "the sliders did not render as widgets"
            assert dashboard.locator(".widget-dropdown select").count() >= 3, "the dropdowns did not render"
            status = dashboard.locator(".lthkit-status")
            # The last cells selected the winning ticket, trained on the way: it is drawn from the cache.
            expect(status).to_contain_text("is in the cache", timeout=ui)

            plot = dashboard.locator("img.lthkit-plot")
            plot.scroll_into_view_if_needed()
            dashboard.screenshot(path=str(ARTIFACTS / "dashboard-before.png"))
            before = plot.screenshot()

            # A slider: the weights remaining, moved with the keyboard like a learner would (1% a key).
            remaining = dashboard.locator(".lthkit-control-density")
            readout = remaining.locator(".widget-readout")
            percent = int(readout.inner_text().strip().rstrip("%")) + 5
            handle = remaining.get_by_role("slider")
            handle.focus()
            for _ in range(5):
                handle.press("ArrowRight")
            expect(readout).to_have_text(f"{percent}%", timeout=ui)
            # A dropdown: global instead of layer-wise pruning (under "more options" in the projector layout).
            dashboard.get_by_text("more options", exact=False).first.click()
            dashboard.get_by_label("pruning scope", exact=True).select_option(label="global")
            # Moving controls trains nothing: the status line only says what Run would train.
            label = re.escape(f"winning ticket, global, rewind θ₀, {percent}% remaining after ") + r"\d+ rounds?"
            expect(status).to_contain_text(re.compile(label + " has not run yet"), timeout=ui)
            plot_before_run = plot.get_attribute("src")

            run = dashboard.get_by_role("button", name="Run", exact=True)
            expect(run).to_be_enabled()
            run.click()
            # The end state: the status line says this run trained (set after everything else).
            expect(status).to_contain_text(re.compile(label + r": trained in [\d.]+ s"), timeout=RUN_TIMEOUT * 1000)
            expect(run).to_be_enabled(timeout=ui)
            expect(dashboard.locator(".lthkit-progress .progress-bar")).to_have_class(
                re.compile(r"\bprogress-bar-success\b"), timeout=ui)
            # ... and counts every training done (n/n).
            expect(dashboard.locator(".lthkit-progress")).to_contain_text(re.compile(r"\b(\d+)/\1\b"), timeout=ui)
            # The rounds' own bars showed in the training log, which is emptied once the run is done.
            expect(dashboard.locator(".lthkit-training-log .widget-hprogress")).to_have_count(0, timeout=ui)
            where = page.evaluate(ESCAPED_BARS, dashboard.element_handle())
            assert where["escaped"] == [], f"progress bars outside the dashboard: {where['escaped']}"
            assert len(where["cell_outputs"]) == 1, f"the dashboard's cell shows more than the dashboard: {where}"

            plot.scroll_into_view_if_needed()
            page.wait_for_function(PLOT_REPLACED, arg=[plot.element_handle(), plot_before_run], timeout=ui)
            assert plot.screenshot() != before, "the plot did not change"
            dashboard.screenshot(path=str(ARTIFACTS / "dashboard-after.png"))
            assert widget_front_end_problem(page) is None

            # Issue 27: one progress bar per run, in one format, no internal names.
            bars, progress = dashboard.locator(".widget-hprogress"), dashboard.locator(".lthkit-progress")
            expect(bars).to_have_count(1)
            assert re.search(r"weights remaining \d+\.\d% .*(\d+)/\1 trainings", normalized(progress.inner_text())), \
                progress.inner_text()
            # Run on a config that is in the cache: nothing trains, and the bar says so.
            run.click()
            expect(status).to_contain_text("from the cache", timeout=ui)
            expect(bars).to_have_count(1)
            expect(progress).to_contain_text(re.compile(r"from.cache"), timeout=ui)

            # A projector: 1024×768, the file browser folded away (a click on its open tab, as a lecturer does),
            # the dashboard scrolled to the top: its plot and Run on that first screen.
            page.set_viewport_size(PROJECTOR)
            open_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
            if open_tab.count():
                open_tab.first.click()
                expect(page.locator("#jp-left-stack")).to_be_hidden(timeout=ui)
            dashboard.evaluate("element => element.scrollIntoView({block: 'start'})")
            assert_on_first_screen(page, dashboard, "projector-lab-1024x768.png")
        finally:
            page.screenshot(path=str(ARTIFACTS / "page-final.png"), full_page=True)
            browser.close()


#: What Voilà logs once its port accepts connections (it logs it right after binding the port).
VOILA_LISTENING = "Voilà is running at"


@pytest.fixture(scope="module")
def voila_app(tmp_path_factory):
    """``python -m lthkit dashboard`` (Voilà) on a free loopback port with a token, fast mode, fresh cache."""
    scratch = tmp_path_factory.mktemp("voila")
    port, token = free_port(), os.urandom(16).hex()
    env = dict(os.environ, LTHKIT_FAST="1", LTHKIT_CACHE=str(scratch / "cache"),
               JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
               IPYTHONDIR=str(scratch / "ipython"), LTHKIT_BROWSER_TEST=str(scratch),
               PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    log_path = scratch / "voila.log"
    server = subprocess.Popen([sys.executable, "-m", "lthkit", "dashboard", "--no-browser", f"--port={port}",
                               f"--token={token}"], cwd=scratch, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    listening = threading.Event()
    printed = []

    def copy_log():
        with open(log_path, "wb") as log:
            for line in server.stdout:
                log.write(line)
                log.flush()
                printed.append(line.decode(errors="replace"))
                if VOILA_LISTENING.encode() in line:
                    listening.set()
        listening.set()

    copier = threading.Thread(target=copy_log, daemon=True)
    copier.start()
    if not listening.wait(SERVER_TIMEOUT) or server.poll() is not None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        pytest.fail(f"lthkit dashboard did not start (exit {server.poll()}); log: {log_path.read_text()[-2000:]}")
    url = f"http://127.0.0.1:{port}/?token={token}"
    yield {"url": url, "printed": "".join(printed), "port": port, "token": token}

    server.send_signal(signal.SIGINT)  # Voilà stops its kernels, then itself
    reap(server, copier, scratch, "stopping lthkit dashboard")


def test_dashboard_app_served_by_voila(voila_app):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The command prints the URL it serves, with its token; without the token the page is refused.
    assert voila_app["url"] in voila_app["printed"], voila_app["printed"]
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{voila_app['port']}/", timeout=30)
    assert refused.value.code in (302, 401, 403) and "login" in refused.value.headers.get("Location", "login")
    ui = UI_TIMEOUT * 1000
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=PROJECTOR)
        page_errors = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        try:
            page.goto(voila_app["url"])
            dashboard = page.locator(".lthkit-dashboard")
            expect(dashboard).to_have_count(1, timeout=SERVER_TIMEOUT * 1000)
            for part in ("status", "progress", "training-log", "plot", "errors", "run", "clear"):
                expect(dashboard.locator(f".lthkit-{part}")).to_have_count(1)
            assert dashboard.locator(".widget-slider").count() >= 3, "the sliders did not render as widgets"
            assert dashboard.locator(".widget-dropdown select").count() >= 3, "the dropdowns did not render"
            # No code: Voilà shows the cells' outputs only.
            assert "from lthkit.course.dashboard import Dashboard" not in page.content()
            status = dashboard.locator(".lthkit-status")
            expect(status).to_contain_text("has not run yet", timeout=ui)
            # Issue 27: on a projector (1024×768) the plot and Run are on the first screen.
            assert_on_first_screen(page, dashboard, "projector-voila-1024x768.png")
            plot = dashboard.locator("img.lthkit-plot")
            plot_before_run = plot.get_attribute("src")
            before = plot.screenshot()
            dashboard.screenshot(path=str(ARTIFACTS / "voila-before.png"))

            run = dashboard.get_by_role("button", name="Run", exact=True)
            expect(run).to_be_enabled()
            run.click()
            expect(status).to_contain_text(re.compile(r": trained in [\d.]+ s"), timeout=RUN_TIMEOUT * 1000)
            expect(run).to_be_enabled(timeout=ui)
            expect(dashboard.locator(".lthkit-progress")).to_contain_text(re.compile(r"\b(\d+)/\1\b"), timeout=ui)
            plot.scroll_into_view_if_needed()
            page.wait_for_function(PLOT_REPLACED, arg=[plot.element_handle(), plot_before_run], timeout=ui)
            assert plot.screenshot() != before, "the plot did not change"
            dashboard.screenshot(path=str(ARTIFACTS / "voila-after.png"))
            bars, progress = dashboard.locator(".widget-hprogress"), dashboard.locator(".lthkit-progress")
            expect(bars).to_have_count(1)
            assert re.search(r"weights remaining \d+\.\d%", normalized(progress.inner_text())), progress.inner_text()
            run.click()  # the same config again: from the cache, and the bar says so
            expect(status).to_contain_text("from the cache", timeout=ui)
            expect(progress).to_contain_text(re.compile(r"from.cache"), timeout=ui)
            page.evaluate("window.scrollTo(0, 0)")
            assert_on_first_screen(page, dashboard, "projector-voila-after-run-1024x768.png")

            # Three trials of the ticket and of re-init at 5% of the weights remaining, the reference behind them.
            remaining = dashboard.locator(".lthkit-control-density")
            readout = remaining.locator(".widget-readout")
            handle = remaining.get_by_role("slider")
            handle.focus()
            for _ in range(int(readout.inner_text().strip().rstrip("%")) - 5):
                handle.press("ArrowLeft")
            expect(readout).to_have_text("5%", timeout=ui)
            trials = dashboard.locator(".lthkit-control-trials")
            trials.get_by_role("slider").focus()
            for _ in range(2):
                trials.get_by_role("slider").press("ArrowRight")
            expect(trials.locator(".widget-readout")).to_have_text("3", timeout=ui)
            # The readout moves in the page at once; wait until the kernel has the three trials too (its
            # status counts their trainings), or a late slider update would overwrite Clear's status line.
            rounds = int(dashboard.locator(".lthkit-control-rounds .widget-readout").inner_text().strip())
            expect(status).to_contain_text(f"5% remaining after {rounds} round{'s' * (rounds != 1)} has not run yet: Run trains "
                                           f"{3 * (rounds + 1)} network(s)", timeout=ui)
            dashboard.get_by_role("button", name="Clear plot", exact=True).click()
            expect(status).to_contain_text("plot cleared", timeout=ui)
            dashboard.get_by_text("more options", exact=False).first.click()
            dashboard.get_by_label(re.compile("^reference")).check()
            for control in ("winning ticket", "random re-init"):
                dashboard.get_by_label("train", exact=True).select_option(label=control)
                label = f"{control}, layer-wise, rewind θ₀, 5% remaining after "
                if control != "winning ticket":  # selected already: no change, no new status line
                    expect(status).to_contain_text(label, timeout=ui)
                    expect(status).to_contain_text("has not run yet", timeout=ui)
                plot_before_run = plot.get_attribute("src")
                run.click()
                expect(status).to_contain_text(re.compile(re.escape(label) + r"\d+ rounds?: trained in [\d.]+ s"),
                                               timeout=RUN_TIMEOUT * 1000)
                page.wait_for_function(PLOT_REPLACED, arg=[plot.element_handle(), plot_before_run], timeout=ui)
            # Both curves have three trials, said in the status line.
            expect(status).to_contain_text(re.compile(r"Trials per curve: winning ticket[^:]*: 3; random re-init[^:]*: 3"),
                                           timeout=ui)
            plot.scroll_into_view_if_needed()
            dashboard.screenshot(path=str(ARTIFACTS / "voila-trials-reference.png"))
            # No error anywhere in the page: none in the dashboard, no cell error, no script error.
            assert dashboard.locator(".lthkit-errors").inner_text().strip() == ""
            assert "Traceback" not in page.locator("body").inner_text()
            assert page_errors == [], page_errors
        finally:
            page.screenshot(path=str(ARTIFACTS / "voila-final.png"), full_page=True)
            browser.close()
