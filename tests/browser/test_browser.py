"""Real-browser tests: the example notebooks, run in JupyterLab 4 and Notebook 7 under Chromium.

A Jupyter server (``jupyter lab``, or ``jupyter notebook`` for Notebook 7) serves a temporary
copy of ``notebooks/`` on 127.0.0.1, with a fixed token and config, data and runtime
directories of its own; Playwright drives Debian's ``chromium``, headless (never a browser
that Playwright downloads). Each test opens a notebook, runs its cells from the Run menu and
asserts on what a user sees: tables with their "..." row and row count, figures as loaded PNG
images, progress bars at 100%, log lines, the ``%dora_status`` graph as an SVG, and a notebook
that stays usable while a graph runs in the background. The copies are run without their
stored outputs and widget state, so everything asserted was drawn by the run itself.

Needs ``playwright``, ``jupyterlab`` 4 and ``notebook`` 7 (pip) and ``chromium`` (apt). When
one is missing the tests are skipped, or fail under CI (see ``tests/needs.py``).

Screenshots go to each test's temporary directory and, when ``DORA_NOTEBOOK_SCREENSHOTS`` names
a directory, there too (``DORA_NOTEBOOK_SCREENSHOTS=docs/screenshots`` refreshes the committed
ones).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from .. import needs

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips, or fails under CI
    expect = None  # type: ignore[assignment]
    PlaywrightError = Exception  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error, Locator, Page, Playwright, Request

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
TOKEN = "dora-notebook-browser-tests"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 900}
#: Generous bound for anything that involves the kernel (2 cores, shared with the browser).
SLOW_MS = 60_000

#: Cells the tests append to the quickstart: a graph that runs for about 4 s in the
#: background, and a cell that must complete while it runs.
TICKER_CELL = """%%dora_operator ticker --inputs tick=dora/timer/millis/100
from dora import DoraStatus

TICKS = 40


class Operator:
    def __init__(self):
        self.ticks = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.ticks += 1
            context.report_progress(100 * self.ticks / TICKS)
            print(f"tick {self.ticks}")
            if self.ticks == TICKS:
                return DoraStatus.STOP
        return DoraStatus.CONTINUE
"""
CHECK_CELL = 'import dora_notebook\n\n1 + 1, dora_notebook.current().node("ticker").status'
BACKGROUND_CELLS = ("%dora_reset", TICKER_CELL, "%dora_start", CHECK_CELL)

#: Both true at one instant: the kernel is idle and has answered the check cell, while
#: the ticker's panel shows it running. Returns the ticker's header text.
_RESPONSIVE_JS = """([cell, notebook]) => {
  const out = cell.querySelector('.jp-OutputArea-output');
  const indicator = notebook.querySelector('.jp-Notebook-ExecutionIndicator');
  const header = [...notebook.querySelectorAll('.dora-node-panel .widget-html-content')]
    .find(h => h.querySelector('b') && h.querySelector('b').textContent === 'ticker');
  const ok = out !== null && out.textContent.includes("(2, 'running')")
    && indicator !== null && indicator.dataset.status === 'idle'
    && header !== undefined && header.textContent.includes(' running ');
  return ok ? header.textContent : false;
}"""


# ---------------------------------------------------------------------------------------
# Tools, notebooks, server


def _chromium() -> str:
    """Debian's chromium; skip (fail under CI) when it or a Python package is missing."""
    modules = ("playwright", "jupyterlab", "notebook")
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    chromium = shutil.which("chromium")
    if chromium is None:
        missing.append("chromium (apt-get install chromium)")
    if missing:
        needs.missing("browser tests need " + ", ".join(missing))
    assert chromium is not None
    return chromium


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_notebook(path: Path, extra_cells: Sequence[str] = ()) -> None:
    """Drop stored outputs and widget state (what shows then comes from this run); append cells."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    for number, source in enumerate(extra_cells):
        nb["cells"].append(
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"browser-test-{number}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        )
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _trust(path: Path, data_dir: Path) -> None:
    """Sign a notebook for the server's data dir, as Jupyter does for a notebook one ran."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(path, as_version=4)
    notary = NotebookNotary(data_dir=str(data_dir))
    try:
        notary.sign(nb)
    finally:
        notary.store.close()


@dataclass
class JupyterServer:
    """A Jupyter server this module started: ``app`` is "lab" or "notebook" (Notebook 7)."""

    app: str
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def notebook_url(self, name: str) -> str:
        """Where a user opens notebook ``name`` (``?reset``: a fresh JupyterLab workspace)."""
        quoted = urllib.parse.quote(name)
        if self.app == "lab":
            return f"{self.url}/lab/tree/{quoted}?reset&token={TOKEN}"
        return f"{self.url}/notebooks/{quoted}?token={TOKEN}"

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API; the decoded JSON answer, or None."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def shutdown_kernels(self, timeout: float = 30.0) -> None:
        """Shut every session and kernel down, and wait until their processes are gone."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")
        server = psutil.Process(self.process.pid)
        deadline = time.monotonic() + timeout
        while True:
            alive = [p for p in server.children(recursive=True) if _alive(p)]
            if not alive:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"kernel processes still running: {alive}")
            time.sleep(0.1)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def _jupyter_server(app: str, base: Path) -> Iterator[JupyterServer]:
    """Serve a prepared copy of ``notebooks/`` with ``jupyter {app}``; stop it and its kernels."""
    root = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root)
    shutil.copy(root / "03-previews.ipynb", root / "03-previews-saved.ipynb")
    _prepare_notebook(root / "01-quickstart.ipynb", BACKGROUND_CELLS)
    _prepare_notebook(root / "03-previews.ipynb")
    # Isolated config, data and runtime dirs. The data dir of sys.prefix (the venv's
    # share/jupyter, with the python3 kernelspec and the widgets' lab extension) stays
    # on the search path: JUPYTER_DATA_DIR only replaces the user's own.
    dirs = {name: base / name for name in ("config", "data", "runtime", "ipython")}
    for path in dirs.values():
        path.mkdir()
    settings = dirs["config"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update checks: they would reach for the network and pop up a toast.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    _trust(root / "03-previews-saved.ipynb", dirs["data"])
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
    }
    env.pop("JUPYTER_TOKEN", None)
    port = _free_port()
    module = {"lab": "jupyterlab", "notebook": "notebook"}[app]
    command = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
    ]
    log = base / f"jupyter-{app}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = JupyterServer(app, f"http://127.0.0.1:{port}", root, process, log)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        _stop(server)


def _wait_until_serving(server: JupyterServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise AssertionError(f"jupyter {server.app} exited:\n{server.log_tail()}")
        with contextlib.suppress(OSError):
            if server.api("GET", "/api/status") is not None:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"jupyter {server.app} does not answer:\n{server.log_tail()}")
        time.sleep(0.2)


def _stop(server: JupyterServer) -> None:
    """Kernels first, then the server (SIGTERM, which also shuts kernels down); wait for all."""
    with contextlib.suppress(OSError, AssertionError):
        server.shutdown_kernels(timeout=10.0)
    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    for child in children:
        if _alive(child):
            child.kill()
    psutil.wait_procs(children, timeout=10)


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def playwright(chromium: str) -> Iterator[Playwright]:
    """The Playwright driver, one for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def lab_server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with _jupyter_server("lab", tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def notebook_server(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    with _jupyter_server("notebook", tmp_path_factory.mktemp("notebook7")) as server:
        yield server


@pytest.fixture
def lab(lab_server: JupyterServer) -> Iterator[JupyterServer]:
    """JupyterLab, with every kernel the test started shut down afterwards."""
    yield lab_server
    lab_server.shutdown_kernels()


@pytest.fixture
def notebook7(notebook_server: JupyterServer) -> Iterator[JupyterServer]:
    """Notebook 7, with every kernel the test started shut down afterwards."""
    yield notebook_server
    notebook_server.shutdown_kernels()


@dataclass
class Tab:
    """A browser page, with the JavaScript errors and off-machine requests seen on it."""

    page: Page
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        url = urllib.parse.urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in (
            "127.0.0.1",
            "localhost",
        ):
            self.remote_requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_error(self, error: Error) -> None:
        self.errors.append(f"{error.name}: {error.message}")


@pytest.fixture
def tab(chromium: str, playwright: Playwright) -> Iterator[Tab]:
    """A fresh headless Chromium with one page; closed (with all its processes) afterwards."""
    browser = playwright.chromium.launch(
        executable_path=chromium, args=CHROMIUM_ARGS, headless=True
    )
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        tab = Tab(page)
        page.on("pageerror", tab.on_error)
        page.on("console", tab.on_console)
        page.on("request", tab.on_request)
        yield tab
    finally:
        browser.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> list[Path]:
    """Where screenshots go: the test's tmp dir, and $DORA_NOTEBOOK_SCREENSHOTS when set."""
    dirs = [tmp_path]
    if os.environ.get("DORA_NOTEBOOK_SCREENSHOTS"):
        target = Path(os.environ["DORA_NOTEBOOK_SCREENSHOTS"])
        dirs.append(target if target.is_absolute() else REPO / target)
    return dirs


# ---------------------------------------------------------------------------------------
# Driving a notebook


class NotebookView:
    """One notebook open in a tab: find its cells and node panels, run cells from the menu."""

    def __init__(self, tab: Tab, server: JupyterServer, name: str) -> None:
        self.tab = tab
        self.page = tab.page
        nb = json.loads((server.root / name).read_text(encoding="utf-8"))
        self.sources = ["".join(cell["source"]) for cell in nb["cells"]]
        self.page.goto(server.notebook_url(name))
        self.root = self.page.locator(".jp-NotebookPanel").filter(visible=True)
        self.indicator = self.root.locator(".jp-Notebook-ExecutionIndicator")
        self.dialog_button = self.page.locator(".jp-Dialog .jp-mod-accept")
        self._wait_for_kernel()

    def _accept_dialog(self) -> bool:
        """Accept the dialog that asks for a kernel ("Select"), if one is open."""
        if not self.dialog_button.is_visible():
            return False
        self.dialog_button.click()
        expect(self.dialog_button).to_have_count(0)
        return True

    def _wait_for_kernel(self) -> None:
        """Accept the kernel-selection dialog if one shows; wait for an idle Python 3 kernel."""
        idle = self.root.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        deadline = time.monotonic() + SLOW_MS / 1000
        while True:
            self.dialog_button.or_(idle).first.wait_for(timeout=SLOW_MS)
            if not self._accept_dialog():
                break
            assert time.monotonic() < deadline, "the kernel dialog keeps coming back"
        expect(self.root.locator(".jp-KernelName")).to_have_text("Python 3 (ipykernel)")
        expect(idle).to_have_count(1, timeout=SLOW_MS)

    def cell(self, source_start: str) -> Locator:
        """The (first) cell whose source starts with ``source_start``."""
        index = next(i for i, src in enumerate(self.sources) if src.startswith(source_start))
        return self.root.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, source_start: str) -> Locator:
        return self.cell(source_start).locator(".jp-Cell-outputArea")

    def node_panel(self, node_id: str) -> Locator:
        """The live panel of node ``node_id`` (its header starts with the id, in bold)."""
        name = re.compile(rf"^{re.escape(node_id)}$")
        header = self.page.locator(".widget-html-content > b", has_text=name)
        return self.root.locator(".dora-node-panel").filter(has=header)

    def select(self, cell: Locator) -> None:
        """Make ``cell`` the active cell (a click on its prompt area, as a user would)."""
        cell.locator(".jp-InputPrompt").click()
        expect(cell).to_contain_class("jp-mod-selected")

    def run(self, menu_item: str, last: Locator | None = None) -> None:
        """Run > ``menu_item``; wait until ``last`` (if given) ran and the kernel is idle."""
        self._accept_dialog()
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name=menu_item, exact=True).click()
        if last is not None:
            self.wait_executed(last)

    def wait_executed(self, cell: Locator) -> None:
        """Wait until ``cell`` has an execution count, no cell is queued and the kernel is idle."""
        expect(cell.locator(".jp-InputPrompt")).to_have_text(
            re.compile(r"^\[\d+\]:$"), timeout=SLOW_MS
        )
        expect(self.root.locator(".jp-InputPrompt", has_text="*")).to_have_count(0, timeout=SLOW_MS)
        expect(self.indicator).to_have_attribute("data-status", "idle", timeout=SLOW_MS)

    def shoot(self, target: Locator, name: str, dirs: Sequence[Path], whole_page: bool) -> None:
        """Screenshot ``target``, or the whole window scrolled to show it, as ``name``.

        A panel's output can be drawn anew just then (a finished chart's static
        picture replaces the output under its display id): the element is found
        again, a few times at most.
        """
        for attempt in range(3):
            try:
                self._shoot(target, name, dirs, whole_page)
                return
            except PlaywrightError as exc:
                if "not attached to the DOM" not in str(exc) or attempt == 2:
                    raise

    def _shoot(self, target: Locator, name: str, dirs: Sequence[Path], whole_page: bool) -> None:
        self.page.mouse.move(1, 1)  # no hover highlight on table rows
        target.evaluate("e => e.scrollIntoView({block: 'start'})")
        # Two animation frames: the scroll is applied and what came into view is painted.
        self.page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        for directory in dirs:
            directory.mkdir(parents=True, exist_ok=True)
            if whole_page:
                self.page.screenshot(path=directory / name)
            else:
                target.screenshot(path=directory / name)


# ---------------------------------------------------------------------------------------
# What a user must see


def _expect_header(panel: Locator, status: str, received: int | None = None) -> None:
    header = panel.locator(".widget-html-content").first
    expect(header).to_contain_text(f" {status} ", timeout=SLOW_MS)
    if received is not None:
        expect(header).to_contain_text(f"{received} received", timeout=SLOW_MS)


def _expect_table(
    table: Locator, columns: list[str], first: list[str], last: list[str], row_count: int
) -> None:
    """A cut table: the header, the first 5 rows, a row of "...", the last 5, "N rows".

    ``first`` and ``last`` are the leading cells of the first and the last row.
    """
    expect(table).to_be_visible()
    assert table.locator("thead th").all_text_contents() == columns
    rows = [row.locator("td").all_text_contents() for row in table.locator("tbody tr").all()]
    assert len(rows) == 11, rows
    assert rows[0][: len(first)] == first, rows
    assert rows[5] == ["..."] * len(columns), rows
    assert rows[-1][: len(last)] == last, rows
    expect(table.locator("caption")).to_have_text(f"{row_count} rows")


def _expect_image(image: Locator) -> dict[str, float]:
    """A PNG that the browser loaded and decoded, and lays out at a non-zero size."""
    image.scroll_into_view_if_needed()
    expect(image).to_be_visible()
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    image.page.wait_for_function("img => img.complete", arg=image.element_handle())
    size = image.evaluate(
        "img => ({natural: img.naturalWidth, naturalHeight: img.naturalHeight,"
        " shown: img.getBoundingClientRect().width})"
    )
    assert size["natural"] > 0 and size["naturalHeight"] > 0, size
    assert size["shown"] > 0, size
    return size


def _expect_progress(panel: Locator, percent: int) -> None:
    """The FloatProgress bar filled to ``percent`` and its Label saying so."""
    bar = panel.locator(".widget-hprogress .progress-bar")
    expect(bar).to_have_count(1)
    expect(bar).to_have_attribute("style", re.compile(rf"width: {percent}%"), timeout=SLOW_MS)
    expect(panel.locator(".widget-hprogress ~ .widget-label")).to_have_text(f"{percent}%")
    box = bar.bounding_box()
    track = panel.locator(".widget-hprogress .progress").bounding_box()
    assert box is not None and track is not None
    assert abs(box["width"] - track["width"] * percent / 100) <= 2, (box, track)


def _expect_log(panel: Locator, *lines: str) -> None:
    """The panel's log (an HTML widget at the bottom of it, under its level filter) shows
    ``lines``."""
    log = panel.locator(":scope > .dora-node-log .widget-html pre")
    expect(log).to_be_visible()
    for line in lines:
        expect(log).to_contain_text(line, timeout=SLOW_MS)


def _expect_clean(tab: Tab) -> None:
    """No uncaught JavaScript error or console error, and no request off this machine."""
    assert tab.errors == [], tab.errors
    assert tab.console_errors == [], tab.console_errors
    assert tab.remote_requests == [], tab.remote_requests


def _expect_reachable(svg: Locator) -> str:
    """The whole SVG can be seen: it fits its output area, or that area scrolls to it.

    Returns "fits" or "scrolls".
    """
    how = svg.evaluate(
        """svg => {
          const width = svg.getBoundingClientRect().width;
          const area = svg.closest('.jp-OutputArea-output');
          for (let e = svg.parentElement; e && e !== area.parentElement; e = e.parentElement) {
            const overflow = getComputedStyle(e).overflowX;
            if (overflow === 'visible') continue;
            if (e.clientWidth + 1 >= width) return 'fits';
            const scrolls = overflow === 'auto' || overflow === 'scroll';
            return scrolls && e.scrollWidth + 1 >= width ? 'scrolls' : 'clipped';
          }
          return area.clientWidth + 1 >= width ? 'fits' : 'overflows';
        }"""
    )
    assert how in ("fits", "scrolls"), how
    return how


def _run_quickstart(view: NotebookView, shots: Sequence[Path], prefix: str) -> None:
    """Run 01-quickstart in two steps, check both, then run a graph in the background."""
    view.tab.errors.clear()  # from here on: errors caused by running the notebook
    view.tab.console_errors.clear()
    # 1. Every cell above "Running in the background": three operators, a run with --wait,
    #    the graph view.
    view.select(view.cell("## Running in the background"))
    view.run("Run All Above Selected Cell", last=view.cell("%dora_status"))
    for line in (
        "sensor: finished, 20 received, 20 sent",
        "smooth: finished, 20 received, 20 sent",
        "dashboard: finished, 20 received, 0 sent",
    ):
        expect(view.output("%dora_start --wait")).to_contain_text(line)
    dashboard = view.node_panel("dashboard")
    expect(dashboard).to_have_count(1)
    _expect_header(dashboard, "finished", 20)
    _expect_header(view.node_panel("sensor"), "finished", 20)
    tables = dashboard.locator("table")
    expect(tables).to_have_count(1)
    _expect_table(
        tables,
        ["reading", "raw °C", "mean °C"],
        first=["1"],
        last=["20"],
        row_count=20,
    )
    expect(dashboard.locator("img")).to_have_count(1)
    _expect_image(dashboard.locator("img"))
    _expect_progress(dashboard, 100)
    _expect_log(dashboard, "input closed after 20 readings")
    view.shoot(dashboard, f"{prefix}-quickstart.png", shots, whole_page=True)

    # The graph view: one SVG, its three operators and the timer, with live counts.
    svg = view.output("%dora_status").locator("svg")
    expect(svg).to_have_count(1)
    expect(svg.locator(".dn-node")).to_have_count(3)
    for text in ("sensor", "smooth", "dashboard", "timer 50 ms", "20 delivered, 0 dropped"):
        expect(svg).to_contain_text(text)
    box = svg.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 40, box
    _expect_reachable(svg)
    view.shoot(view.output("%dora_status"), f"{prefix}-quickstart-graph.png", shots, False)

    # 2. The rest: a background run stopped halfway, then the test's own cells: a 4 s
    #    graph started without --wait, and `1 + 1` while it runs.
    view.run("Run Selected Cell and All Below")
    check = view.cell(CHECK_CELL)
    header = view.page.wait_for_function(
        _RESPONSIVE_JS, arg=[check.element_handle(), view.root.element_handle()], timeout=SLOW_MS
    ).json_value()
    running_count = int(re.search(r"(\d+) received", header).group(1))  # type: ignore[union-attr]
    assert running_count < 40, header
    expect(view.output("%dora_wait --timeout 0.5")).to_have_text("still running after 0.5 s")
    expect(view.output("%dora_stop")).to_have_text("stopped")
    _expect_log(dashboard, "stopped after")
    expect(view.output(CHECK_CELL)).to_contain_text("(2, 'running')")
    ticker = view.node_panel("ticker")
    _expect_header(ticker, "finished", 40)  # the panel went on updating by itself
    _expect_progress(ticker, 100)
    _expect_log(ticker, "… 25 earlier lines", "tick 26", "tick 40")  # the newest 15 lines
    view.wait_executed(check)
    view.shoot(ticker, f"{prefix}-background.png", shots, whole_page=False)
    _expect_clean(view.tab)


# ---------------------------------------------------------------------------------------
# Tests


def test_lab_quickstart(lab: JupyterServer, tab: Tab, screenshots: list[Path]) -> None:
    """01-quickstart in JupyterLab: table, figure, progress, log, graph view, background run."""
    view = NotebookView(tab, lab, "01-quickstart.ipynb")
    _run_quickstart(view, screenshots, "lab")


def test_notebook7_quickstart(notebook7: JupyterServer, tab: Tab, screenshots: list[Path]) -> None:
    """The same quickstart run in Notebook 7's single-document UI."""
    view = NotebookView(tab, notebook7, "01-quickstart.ipynb")
    expect(tab.page.locator("#jp-title")).to_have_text("01-quickstart")  # not JupyterLab
    _run_quickstart(view, screenshots, "notebook7")


def test_lab_previews(lab: JupyterServer, tab: Tab, screenshots: list[Path]) -> None:
    """03-previews in JupyterLab: every kind of preview, progress, logs and an error."""
    view = NotebookView(tab, lab, "03-previews.ipynb")
    tab.errors.clear()  # from here on: errors caused by running the notebook
    tab.console_errors.clear()
    view.run("Run All Cells", last=view.cell("%dora_start --wait"))
    summary = view.output("%dora_start --wait")
    for line in (
        "tables: finished",
        "pictures: finished",
        "worker: finished, 25 received, 0 sent",
        "validator: failed",
    ):
        expect(summary).to_contain_text(line)

    tables = view.node_panel("tables")
    _expect_header(tables, "finished")
    day, extremes, stations = (tables.locator("table").nth(i) for i in range(3))
    expect(tables.locator("table")).to_have_count(3)
    _expect_table(
        day, ["hour", "temperature", "wind"], ["0", "9.8", "5.0"], ["23", "11.0", "2.8"], 24
    )
    expect(extremes.locator("caption")).to_have_text("2 rows")
    rows = [row.locator("td").all_text_contents() for row in extremes.locator("tbody tr").all()]
    assert rows == [["min", "8.0"], ["max", "20.0"]], rows
    expect(stations).to_contain_text("Lyon")
    expect(stations.locator("thead th")).to_have_text(["station", "city", "country"])

    pictures = view.node_panel("pictures")
    expect(pictures.locator("img")).to_have_count(2)
    _expect_image(pictures.locator("img").first)  # the matplotlib Figure
    pattern = _expect_image(pictures.locator("img").nth(1))  # the 240 x 100 numpy image
    assert (pattern["natural"], pattern["naturalHeight"]) == (240, 100), pattern
    view.shoot(tables, "lab-previews.png", screenshots, whole_page=True)
    view.shoot(pictures, "lab-previews-figures.png", screenshots, whole_page=True)

    documents = view.node_panel("documents")
    expect(documents).to_contain_text("A str is shown as plain text.")
    expect(documents.locator(".jp-RenderedJSON")).to_contain_text("harbour")
    expect(documents.locator("h4")).to_contain_text("Daily report")
    expect(documents.locator("strong")).to_have_text("warmest")
    expect(documents).to_contain_text("all 3 sensors online")

    frame = view.node_panel("page").locator("iframe")
    expect(frame).to_have_attribute("src", re.compile(r"^data:text/html;base64,"))
    expect(frame.content_frame.locator("h4")).to_have_text("A page of its own")
    audio = view.node_panel("sound").locator("audio")
    expect(audio).to_have_attribute("src", re.compile(r"^data:audio/"))
    duration = view.page.wait_for_function(
        "a => a.readyState >= 1 && a.duration", arg=audio.element_handle(), timeout=SLOW_MS
    ).json_value()
    assert abs(duration - 0.8) < 0.05, duration

    worker = view.node_panel("worker")
    _expect_header(worker, "finished", 25)
    _expect_progress(worker, 100)
    expect(worker).to_contain_text("done: 25 steps")
    expect(worker).not_to_contain_text("working on step")  # same id: replaced
    expect(worker.locator("table caption")).to_have_text("25 rows")

    chatty = view.node_panel("chatty")
    _expect_log(
        chatty,
        "print() writes to the node's log",
        "report_log writes one line",
        "report_log can mark a line as stderr",
        "its warnings are highlighted",
        "calibrated",
        "send_warning: something looks odd",
    )
    validator = view.node_panel("validator")
    _expect_header(validator, "failed")
    error = validator.locator("pre span", has_text="reading 2 is -999.0: is the sensor unplugged?")
    expect(error).to_have_css("color", "rgb(207, 34, 46)")
    _expect_log(validator, "checked 4 readings")
    view.shoot(worker, "lab-previews-progress.png", screenshots, whole_page=True)
    view.shoot(chatty, "lab-previews-logs.png", screenshots, whole_page=True)
    _expect_clean(tab)


def test_lab_saved_widget_state(lab: JupyterServer, tab: Tab) -> None:
    """A run notebook, reopened (trusted), shows its final panels without running anything."""
    view = NotebookView(tab, lab, "03-previews-saved.ipynb")
    expect(view.root.locator(".dora-node-panel")).to_have_count(8, timeout=SLOW_MS)
    tables = view.node_panel("tables")
    _expect_header(tables, "finished")
    _expect_table(
        tables.locator("table").first,
        ["hour", "temperature", "wind"],
        ["0", "9.8", "5.0"],
        ["23", "11.0", "2.8"],
        24,
    )
    _expect_image(view.node_panel("pictures").locator("img").first)
    _expect_progress(view.node_panel("worker"), 100)
    _expect_log(view.node_panel("chatty"), "print() writes to the node's log")
    _expect_clean(tab)


# ---------------------------------------------------------------------------------------
# Images and live charts

#: A camera (moving stripes, 640x480 rgb8 at 30 Hz for 4 s), a viewer previewing each
#: frame as it is (dora's event) and plotting two series, started without --wait.
MEDIA_CELLS = (
    "%load_ext dora_notebook",
    """%%dora_node camera --outputs image
import time
import numpy as np
import pyarrow as pa
from dora import Node

node = Node()
h, w = 480, 640
xx = np.arange(w)
for i in range(120):
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, :, 0] = ((xx + 16 * i) // 40 % 2 * 255)[None, :]  # red stripes moving right
    frame[:, :, 2] = 90
    node.send_output("image", pa.array(frame.ravel()),
                     {"width": w, "height": h, "encoding": "rgb8", "i": i})
    time.sleep(1 / 30)
""",
    """%%dora_operator viewer --inputs image=camera/image
import math


class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            i = dora_event["metadata"]["i"]
            context.preview(dora_event)
            context.plot("frame", i)
            context.plot("wave", 60 + 50 * math.sin(i / 8))
""",
    "%dora_start",
)

#: Distinct values of ``key(element)`` seen over time; true once ``count`` were seen.
#: ``pixels``: the red of a row of a canvas's pixels (what it shows, not a counter).
_CHANGES_JS = """([element, count, key]) => {
  const seen = (element.__doraSeen = element.__doraSeen || new Set());
  if (key === 'pixels') {
    if (!element.width) return false;
    const row = element.getContext('2d').getImageData(0, element.height >> 1, 80, 1).data;
    seen.add(Array.from({length: 10}, (_, i) => row[32 * i] > 127 ? 1 : 0).join(''));
  } else {
    seen.add(element.dataset.points);
  }
  return seen.size >= count;
}"""

#: A FrameView's canvas once it drew a frame: ``[width, height, frames, errors]``.
_CANVAS_JS = """canvas => [canvas.width, canvas.height, Number(canvas.dataset.frames || 0),
                 Number(canvas.dataset.errors || 0)]"""


def _write_notebook(path: Path, cells: Sequence[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    path.write_text(nbformat.writes(nb), encoding="utf-8")


def _run_media(view: NotebookView, shots: Sequence[Path], prefix: str) -> None:
    """The camera plays (its image changes while the graph runs), the chart moves, and
    the final frame and every point are shown."""
    view.tab.errors.clear()
    view.tab.console_errors.clear()
    view.run("Run All Cells", last=view.cell("%dora_start"))
    viewer = view.node_panel("viewer")
    image = viewer.locator("canvas.dora-preview-image")
    chart = viewer.locator(".dora-chart")
    expect(image).to_have_count(1, timeout=SLOW_MS)
    expect(chart).to_have_count(1, timeout=SLOW_MS)
    # While it runs: 5 different pictures (the stripes' 5 places), and the chart with
    # more and more points.
    for target, key in ((image, "pixels"), (chart, "points")):
        view.page.wait_for_function(
            _CHANGES_JS, arg=[target.element_handle(), 5, key], timeout=SLOW_MS
        )
    _expect_header(viewer, "finished", 120)
    # The frames came as bytes the page decoded itself, none failed. (Counted by this
    # canvas: one drawn anew as the final chart's picture came has drawn 1.)
    width, height, frames, errors = image.evaluate(_CANVAS_JS)
    assert (width, height, errors) == (640, 480, 0), (width, height, frames, errors)
    assert frames >= 1, frames
    box = image.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 150, box
    expect(chart).to_have_attribute("data-points", "240", timeout=SLOW_MS)  # 2 x 120 points
    legend = chart.locator(".dora-chart-legend")
    expect(legend).to_contain_text("frame 119")
    expect(legend).to_contain_text("wave")
    box = chart.locator("canvas").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100, box
    view.shoot(viewer, f"{prefix}-video.png", shots, whole_page=False)
    _expect_clean(view.tab)


def test_lab_video_and_live_chart(lab: JupyterServer, tab: Tab, screenshots: list[Path]) -> None:
    """A camera's frames play as video and a live chart draws itself, in JupyterLab."""
    _write_notebook(lab.root / "media.ipynb", MEDIA_CELLS)
    _run_media(NotebookView(tab, lab, "media.ipynb"), screenshots, "lab")


def test_notebook7_video_and_live_chart(
    notebook7: JupyterServer, tab: Tab, screenshots: list[Path]
) -> None:
    """The same in Notebook 7."""
    _write_notebook(notebook7.root / "media.ipynb", MEDIA_CELLS)
    _run_media(NotebookView(tab, notebook7, "media.ipynb"), screenshots, "notebook7")


def test_lab_saved_video_and_chart(lab: JupyterServer, tab: Tab, screenshots: list[Path]) -> None:
    """A notebook executed elsewhere (nbclient, widget state saved), reopened trusted:
    the last frame and the whole chart show without running anything."""
    path = lab.root / "media-saved.ipynb"
    cells = (*MEDIA_CELLS[:-1], "%dora_start --wait --timeout 60")
    _write_notebook(path, cells)
    # In a process of its own: here Playwright's event loop runs in the main thread,
    # and nbclient would leave a loop-runner thread behind.
    execute = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, kernel_name='python3', store_widget_state=True, timeout=120)"
        ".execute()\n"
        "nbformat.write(nb, sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", execute, str(path)], check=True, timeout=180)
    _trust(path, lab.root.parent / "data")
    view = NotebookView(tab, lab, "media-saved.ipynb")
    viewer = view.node_panel("viewer")
    _expect_header(viewer, "finished", 120)
    image = viewer.locator("canvas.dora-preview-image")
    view.page.wait_for_function(
        "canvas => canvas.dataset.frames", arg=image.element_handle(), timeout=SLOW_MS
    )
    width, height, frames, errors = image.evaluate(_CANVAS_JS)
    assert (width, height, errors) == (640, 480, 0) and frames >= 1, (width, height, frames)
    # The last frame (119: the stripes 1904 px on): red where x < 16 or x >= 56.
    row = image.evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 240, 80, 1).data)"
        ".filter((_, i) => i % 4 === 0)"
    )
    assert [row[x] > 127 for x in (8, 24, 48, 64)] == [True, False, False, True], row[::8]
    chart = viewer.locator(".dora-chart")
    expect(chart).to_have_attribute("data-points", "240", timeout=SLOW_MS)
    expect(chart.locator(".dora-chart-legend")).to_contain_text("frame 119")
    view.shoot(viewer, "lab-video-saved.png", screenshots, whole_page=False)
    _expect_clean(tab)
