"""loadkit's pytest plugin (entry point ``pytest11: loadkit``): load runs gated on an SLO, as tests.

A fixture runs a profile (with an optional chaos scenario) against the reference stack or your
service and gates it; ``assert_slo()`` fails the test with every objective that was missed and
the report's path::

    def test_smoke_release(loadkit_run):
        result = loadkit_run("profiles/smoke.yaml", scenario="chaos/smoke-fault.yaml",
                             slo="slo/smoke.yaml")
        result.assert_slo()

    @pytest.mark.loadkit(profile="profiles/smoke.yaml", slo="slo/smoke.yaml")
    def test_smoke_marked(loadkit_result):     # run before the test, SLO asserted after it
        assert loadkit_result.metrics.total.action.counts.answered > 0

Fixtures: ``loadkit_run`` (the callable above), ``loadkit_result`` (the run a ``loadkit`` marker
asks for), ``loadkit_stack`` (session: the reference stack runs go to; started on first use and
stopped at the end, or attached with ``--loadkit-stack-dir``; override it in your conftest to
reuse a stack you already have), ``loadkit_capacity`` (a callable: the capacity knee of a
profile, see :mod:`loadkit.capacity`). Options: ``--loadkit-out DIR`` (keep run directories there;
default: pytest's temporary directory), ``--loadkit-stack-dir DIR``, ``--loadkit-time-scale F``.

The plugin is loaded into every pytest session where loadkit is installed, so importing it costs
nothing: loadkit's run machinery is imported on first use only.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from loadkit.gate import GateResult
    from loadkit.report.model import RunMetrics
    from loadkit.stack.reference import ReferenceStack

_REPORTS = pytest.StashKey[list[tuple[str, Path, str]]]()
MARKER = (
    "loadkit(profile, slo=None, scenario=None, target=None, time_scale=None, workers=0, "
    "assert_slo=True): run a load profile before the test (the loadkit_result fixture) and fail "
    "the test when its SLO is not met"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loadkit", "loadkit load runs")
    group.addoption(
        "--loadkit-out",
        metavar="DIR",
        help="where load runs' directories go (default: pytest's temporary directory)",
    )
    group.addoption(
        "--loadkit-stack-dir",
        metavar="DIR",
        help="use the reference stack running in DIR (`loadkit stack up --stack-dir DIR`) "
        "instead of starting one for the session",
    )
    group.addoption(
        "--loadkit-time-scale",
        type=float,
        metavar="F",
        help="override every run's time scale (e.g. 0.1 for a quick pass)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    config.stash[_REPORTS] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``loadkit``-marked test gets its run even when it does not ask for the fixture."""
    for item in items:
        fixturenames = getattr(item, "fixturenames", None)
        marked = item.get_closest_marker("loadkit") is not None
        if marked and fixturenames is not None and "loadkit_result" not in fixturenames:
            fixturenames.append("loadkit_result")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a ``loadkit``-marked test's body passed: assert its SLO."""
    outcome = yield
    marker = item.get_closest_marker("loadkit")
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    result = funcargs.get("loadkit_result")
    wanted = marker is not None and marker.kwargs.get("assert_slo", True)
    if wanted and isinstance(result, LoadkitResult) and result.gate is not None:
        result.assert_slo()
    return outcome


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runs = config.stash.get(_REPORTS, [])
    if not runs:
        return
    terminalreporter.section("loadkit runs")
    for nodeid, report, verdict in runs:
        terminalreporter.write_line(f"{verdict:<6} {nodeid}: {report}")


@dataclass
class LoadkitResult:
    """One run as a test sees it: where it is, how it ended, and the gate's verdict."""

    run_dir: Path
    status: str
    reason: str | None
    gate: GateResult | None

    @property
    def report(self) -> Path:
        """``report.html`` of the run."""
        from loadkit.rundir import RunDir

        return RunDir(self.run_dir).report_html

    @property
    def metrics(self) -> RunMetrics:
        from loadkit.report.metrics import compute_metrics

        return compute_metrics(self.run_dir)

    @property
    def passed(self) -> bool:
        """The gate passed (a run without an SLO passes when it completed)."""
        return self.gate.passed if self.gate is not None else self.status == "completed"

    def failure_message(self) -> str:
        """Every failed objective, the run's status and where the report is."""
        from loadkit.gate import failure_lines

        name = self.gate.slo.name if self.gate is not None else "-"
        lines = [f"loadkit: SLO '{name}' not met by run {self.run_dir.name} ({self.status})"]
        if self.gate is not None:
            lines += [f"  ✗ {line}" for line in failure_lines(self.gate)]
        elif self.reason:
            lines.append(f"  ✗ run {self.status}: {self.reason}")
        lines += [f"report: {self.report}", f"run directory: {self.run_dir}"]
        return "\n".join(lines)

    def assert_slo(self) -> None:
        """Fail the test (no traceback) with :meth:`failure_message` unless the gate passed."""
        if self.gate is None:
            raise ValueError("this run had no SLO: pass slo=... to loadkit_run")
        if not self.gate.passed:
            pytest.fail(self.failure_message(), pytrace=False)


class LoadkitRunner:
    """The ``loadkit_run`` fixture: ``loadkit_run(profile, scenario=None, slo=None, …)``."""

    def __init__(self, request: pytest.FixtureRequest, out: Path) -> None:
        self.request = request
        self.out = out
        self.config = request.config

    def _path(self, value: str | Path | None) -> Path | None:
        """Paths relative to the working directory, else to the rootdir (where pytest.ini is)."""
        if value is None:
            return None
        path = Path(value)
        if not path.is_absolute() and not path.exists():
            candidate = self.config.rootpath / path
            if candidate.exists():
                return candidate
        return path

    def __call__(
        self,
        profile: str | Path,
        *,
        scenario: str | Path | None = None,
        slo: str | Path | None = None,
        target: str | None = None,
        time_scale: float | None = None,
        workers: int = 0,
    ) -> LoadkitResult:
        from loadkit.report import write_reports
        from loadkit.run.orchestrator import Runner, RunOptions

        stack_dir: Path | None = None
        if target is None or scenario is not None:
            stack: ReferenceStack = self.request.getfixturevalue("loadkit_stack")
            stack_dir = stack.stack_dir
        scale = self.config.getoption("loadkit_time_scale") or time_scale
        profile_path = self._path(profile)
        assert profile_path is not None
        options = RunOptions(
            profile=profile_path,
            target=target,
            workers=workers,
            out=self.out,
            time_scale=scale,
            stack_dir=stack_dir,
            chaos=self._path(scenario),
            slo=self._path(slo),
            command=["pytest", self.request.node.nodeid],
        )
        run = Runner(options, None).run()  # a bad profile, scenario or SLO raises here
        if slo is None:
            write_reports(run.run_dir)  # with an SLO, the gate renders them, gate included
        return self.gate(run.run_dir, slo, status=run.status, reason=run.record.reason)

    def gate(
        self,
        run_dir: str | Path,
        slo: str | Path | None,
        *,
        status: str | None = None,
        reason: str | None = None,
    ) -> LoadkitResult:
        """Gate an existing run directory (``loadkit gate`` from a test): ``gate.json``, and
        its report files rendered again to show the gate."""
        from loadkit.gate import gate_run, load_slo

        run_dir = Path(run_dir)
        slo_path = self._path(slo)
        gate = gate_run(run_dir, load_slo(slo_path)) if slo_path is not None else None
        result = LoadkitResult(
            run_dir, status or (gate.status if gate else "unknown"), reason, gate
        )
        node = self.request.node
        node.user_properties.append(("loadkit_report", str(result.report)))
        verdict = "passed" if result.passed else "FAILED"
        self.config.stash[_REPORTS].append((node.nodeid, result.report, verdict))
        return result


@pytest.fixture(scope="session")
def loadkit_stack(request: pytest.FixtureRequest) -> Iterator[ReferenceStack]:
    """The reference stack load runs go to: attached with ``--loadkit-stack-dir``, else started
    for the session (2 wallet instances) and stopped at its end."""
    from loadkit.stack.reference import ReferenceStack, StackOptions

    given = request.config.getoption("loadkit_stack_dir")
    if given:
        yield ReferenceStack.attach(Path(given))
        return
    # world-traversable: PostgreSQL runs as another user when the tests run as root
    root = Path(tempfile.mkdtemp(prefix="loadkit-stack-"))
    root.chmod(0o755)
    stack = ReferenceStack.up(root / "stack", StackOptions())
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def _loadkit_out(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = request.config.getoption("loadkit_out")
    return Path(given).absolute() if given else tmp_path_factory.mktemp("loadkit-runs")


@pytest.fixture
def loadkit_run(request: pytest.FixtureRequest, _loadkit_out: Path) -> LoadkitRunner:
    """Run a profile and gate it: ``loadkit_run(profile, scenario=, slo=, target=,
    time_scale=, workers=)`` → a :class:`LoadkitResult`."""
    return LoadkitRunner(request, _loadkit_out)


@pytest.fixture
def loadkit_result(request: pytest.FixtureRequest, loadkit_run: LoadkitRunner) -> LoadkitResult:
    """The run a ``@pytest.mark.loadkit(profile=…, slo=…, scenario=…)`` marker asks for."""
    marker = request.node.get_closest_marker("loadkit")
    if marker is None:
        raise pytest.UsageError(
            "loadkit_result needs a @pytest.mark.loadkit(profile=...) marker; "
            "or call the loadkit_run fixture"
        )
    kwargs = dict(marker.kwargs)
    kwargs.pop("assert_slo", None)
    if "chaos" in kwargs:  # the CLI's name for a scenario
        kwargs["scenario"] = kwargs.pop("chaos")
    profile = kwargs.pop("profile", marker.args[0] if marker.args else None)
    if profile is None:
        raise pytest.UsageError("@pytest.mark.loadkit needs a profile: loadkit(profile=...)")
    return loadkit_run(profile, **kwargs)


@pytest.fixture
def loadkit_capacity(request: pytest.FixtureRequest, _loadkit_out: Path) -> Any:
    """Find the capacity knee (``loadkit capacity`` from a test): ``loadkit_capacity(profile,
    max_busy=0.01, slo=None, scenario=None, target=None, **search)`` → a
    :class:`~loadkit.capacity.CapacityResult` (``outcome``, ``knee_rate``, ``steps``,
    ``capacity_dir``). ``search`` takes :class:`~loadkit.capacity.CapacityOptions` fields
    (``start_rate``, ``max_rate``, ``step``, ``resolution``, ``hold_s``, ``warmup_s``…); the
    passes go to ``loadkit_stack`` unless ``target`` is given::

        result = loadkit_capacity("profiles/smoke.yaml", max_busy=0.01, max_rate=400)
        assert result.knee_rate is not None and result.knee_rate >= 300
    """
    runner = LoadkitRunner(request, _loadkit_out)

    def find(
        profile: str | Path,
        *,
        max_busy: float | None = None,
        slo: str | Path | None = None,
        scenario: str | Path | None = None,
        target: str | None = None,
        **search: Any,
    ) -> Any:
        from loadkit.capacity import CapacityOptions, find_capacity
        from loadkit.capacity.model import Measure, StepObjective, objectives_from_slo

        objectives = []
        if max_busy is not None or slo is None:
            objectives.append(
                StepObjective(Measure.BUSY_RATE, 0.01 if max_busy is None else max_busy)
            )
        slo_path = runner._path(slo)
        if slo_path is not None:
            from loadkit.gate import load_slo

            objectives.extend(objectives_from_slo(load_slo(slo_path))[0])
        stack_dir: Path | None = None
        if target is None or scenario is not None:
            stack: ReferenceStack = request.getfixturevalue("loadkit_stack")
            stack_dir = stack.stack_dir
        profile_path = runner._path(profile)
        assert profile_path is not None
        return find_capacity(
            CapacityOptions(
                profile=profile_path,
                objectives=tuple(objectives),
                chaos=runner._path(scenario),
                target=target,
                stack_dir=stack_dir,
                out=_loadkit_out,
                slo_name=str(slo_path) if slo_path else None,
                command=["pytest", request.node.nodeid],
                **search,
            )
        )

    return find
