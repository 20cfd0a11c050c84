"""The HTML page drawn in a forked process, a *chart worker*, while this one reads the timeline
and writes the other formats: matplotlib's import (~0.4 s) and the page template's compilation
run while the metrics are computed, then the worker draws the wide charts and a fork of it the
narrow ones (~0.8 s of drawing for an hour-long run: ten SVGs) and renders the page, while this
process writes the other formats, on the machine's two cores. The page is the same byte for
byte as one rendered in process (``tests/report/test_chartjob.py``); the processes share their
pages until they write them (an hour-long run's report: ~185 MB of memory in all, PSS)::

    job = ChartJob.start()            # None: no fork here (not POSIX, or other threads run)
    m = compute_metrics(run_dir)
    job.submit(m, wall_t0=None)       # the metrics go to the worker (a pickle, ~0.3 MB)
    …                                 # the other formats
    page = job.result()               # html.render_html's text; None: the worker failed
    job.close()                       # always (idempotent): no worker is left behind

When the worker fails (an exception, killed), :meth:`ChartJob.result` returns ``None`` and the
caller renders the page itself: the same page, or the same error, as without a worker.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import threading
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadkit.report.html import ChartSection
    from loadkit.report.model import RunMetrics

#: what the worker imports before it is asked (matplotlib: ~0.4 s; the page: jinja2)
_WARM = (
    "matplotlib.figure",
    "matplotlib.ticker",
    "matplotlib.backends.backend_svg",
    "loadkit.report.html",
)
#: Linux: the pipes hold a whole request (metrics) without the writer waiting for the reader
_PIPE_BYTES = 1 << 20


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _grow(fd: int) -> None:
    """Best effort: a larger pipe buffer (Linux's ``F_SETPIPE_SZ``)."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setsize, _PIPE_BYTES)


class ChartJob:
    """A forked chart worker: :meth:`start`, :meth:`submit`, :meth:`result`, :meth:`close`."""

    def __init__(self, pid: int, request: int, reply: int) -> None:
        self.pid, self._request, self._reply = pid, request, reply
        self._submitted = False
        self._collected = False
        self._closed = False

    @classmethod
    def start(cls) -> ChartJob | None:
        """Fork the worker; it imports matplotlib and waits for :meth:`submit`. ``None`` where
        forking is not safe: no ``os.fork``, or other threads running (a fork copies only the
        calling thread: a lock another thread held would stay held in the worker)."""
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        _grow(request_w)
        _grow(reply_w)
        try:
            pid = os.fork()
        except OSError:
            for fd in (request_r, request_w, reply_r, reply_w):
                os.close(fd)
            return None
        if pid == 0:  # the worker: never returns
            _worker(request_r, reply_w, (request_w, reply_r))
        os.close(request_r)
        os.close(reply_w)
        return cls(pid, request_w, reply_r)

    def submit(self, m: RunMetrics, wall_t0: float | None) -> None:
        """Hand the worker the metrics (and the charts' wall-clock origin) to draw the page
        of."""
        data = pickle.dumps((m, wall_t0), protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.suppress(OSError):  # a worker that died: result() says so
            _write_all(self._request, data)
        os.close(self._request)
        self._submitted = True

    def result(self) -> str | None:
        """The page (waits for the worker); ``None`` when it failed."""
        if not self._submitted or self._closed:
            return None
        try:
            data = _read_all(self._reply)
        except OSError:
            data = b""
        self._collected = True
        self.close()
        try:
            status, payload = pickle.loads(data)
        except Exception:  # a worker killed mid-write: draw the charts here
            return None
        if status != "ok" or not isinstance(payload, str):
            return None
        return payload

    def close(self) -> None:
        """End the worker (killed when its charts were not collected: the report failed or
        was interrupted) and reap it."""
        if self._closed:
            return
        self._closed = True
        if not self._collected:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if not self._submitted:
            os.close(self._request)
        os.close(self._reply)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _draw(m: RunMetrics, wall_t0: float | None) -> list[ChartSection]:
    """Every chart: the narrow variants in a second fork (matplotlib already imported, so it
    costs a few milliseconds), the wide ones here, on the two cores a report machine has."""
    from loadkit.report.charts import NARROW, WIDE
    from loadkit.report.html import chart_sections

    read, write = os.pipe()
    _grow(write)
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 0
        try:
            narrow = chart_sections(m, wall_t0, variants=[NARROW])
            _write_all(write, pickle.dumps(narrow, protocol=pickle.HIGHEST_PROTOCOL))
        except BaseException:  # the worker sees a short reply and fails
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    try:
        sections = chart_sections(m, wall_t0, variants=[WIDE])
        data = _read_all(read)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    for section, other in zip(sections, pickle.loads(data), strict=True):
        section["svgs"] = [*section["svgs"], *other["svgs"]]
    return sections


def _page(m: RunMetrics, wall_t0: float | None) -> str:
    """The page with the charts :func:`_draw` draws (what ``render_html`` would draw)."""
    from loadkit.report.formats import ReportOptions
    from loadkit.report.html import render_html

    sections = _draw(m, wall_t0)
    return render_html(m, ReportOptions(charts=lambda: sections))


def _worker(request: int, reply: int, parents: tuple[int, ...]) -> None:
    """The forked process: warm matplotlib and the page template up, render the page asked
    for, send it back, exit (with ``os._exit``: nothing of the parent's — buffered output,
    atexit hooks — runs twice)."""
    code = 0
    try:
        for fd in parents:
            os.close(fd)
        # the parent's signal handlers are not the worker's (a run's "stop the run" on Ctrl-C):
        # an interrupt ends the worker, and the parent draws the charts or stops itself
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        # what drawing the first chart would import: done while the parent reads the timeline
        for module in _WARM:
            importlib.import_module(module)
        from loadkit.report.html import page_template

        page_template()

        data = _read_all(request)
        if data:  # nothing: the parent closed without asking (it failed, or did not need it)
            m, wall_t0 = pickle.loads(data)
            reply_data: tuple[str, Any] = ("ok", _page(m, wall_t0))
            _write_all(reply, pickle.dumps(reply_data, protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException:  # reported to the parent, which draws the charts
        code = 1
        with contextlib.suppress(BaseException):
            _write_all(reply, pickle.dumps(("error", traceback.format_exc())))
    finally:
        os._exit(code)
