"""Does anything grow or fall behind over a long run? The reference stack under a steady 60% of its
capacity knee for ``--minutes`` (30 by default), sampling every ``--interval`` seconds the memory
(RSS) and CPU of each component: the Locust workers (the generator), the Locust master, each wallet
instance, PostgreSQL (the postmaster and its backends: their private memory, PSS less the shared
memory mappings, is what the target applies to; the shared mappings — the buffer pool, bounded by
``shared_buffers``, filling as pages are first read — are shown beside it), Toxiproxy, and this
process (the run's orchestrator: timeline, events, listeners). Per minute it takes the busy rate
and p99 of user actions from the run's timeline. It prints each component's memory growth
after the warm-up (the first 5 minutes, or the first sixth of a shorter run), the p99
drift, and PASS/FAIL for the targets, and writes ``soak.json`` (every sample) and ``soak.png``::

    .venv/bin/python bench/soak.py --minutes 30                 # finds the knee first
    .venv/bin/python bench/soak.py --minutes 2 --knee 900       # 60% of a knee you measured
    .venv/bin/python bench/soak.py --minutes 2 --rate 300 --interval 2

Targets: memory growth ≤ 5% per component after the warm-up, p99 drift ≤ 10% (the p99 of the last
third of the measured span against the first third), busy rate 0. Exit code 0 when every target
passes, 1 otherwise. Not part of ``make test``: it wants quiet CPUs for its whole length.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from loadkit.profile.model import load_profile
from loadkit.run import Runner, RunOptions
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack, StackOptions
from loadkit.stack.watchdog import Watchdog

ROOT = Path(__file__).resolve().parents[1]
#: the targets of issue 19 (fractions)
MAX_GROWTH = 0.05
MAX_P99_DRIFT = 0.10
#: the share of the knee the soak holds
SHARE = 0.6


@dataclass
class Sample:
    """One component at one moment: ``rss`` in bytes (for PostgreSQL its private memory: PSS less
    the shared mappings), ``shared`` the PSS of PostgreSQL's shared mappings (shared buffers and
    the like; 0 for the others), ``cpu`` in percent of one core since the previous sample."""

    t: float
    component: str
    pids: list[int]
    rss: int
    cpu: float
    shared: int = 0


@dataclass
class Minute:
    minute: int
    answered: int
    busy: int
    busy_rate: float
    p99_ms: float | None


@dataclass
class Growth:
    component: str
    baseline_mb: float
    final_mb: float
    growth: float  # fraction
    cpu_mean: float
    #: mean CPU (% of a core) of the first and the last third of the measured samples
    cpu_first: float
    cpu_last: float
    #: PostgreSQL's shared mappings (the buffer pool) at the same two moments, MB
    shared_baseline_mb: float = 0.0
    shared_final_mb: float = 0.0


@dataclass
class SoakResult:
    rate: float
    knee: float | None
    minutes: float
    interval_s: float
    warmup_s: float
    run_dir: str
    status: str
    samples: list[Sample] = field(default_factory=list)
    per_minute: list[Minute] = field(default_factory=list)
    growth: list[Growth] = field(default_factory=list)
    p99_first_ms: float | None = None
    p99_last_ms: float | None = None
    p99_drift: float | None = None
    busy: int = 0
    unsent: int = 0
    answered: int = 0
    verdicts: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- sampling ---------------------------------------------------------------------------------


class Sampler:
    """Samples every component of a run every ``interval`` seconds, in a thread, from the run's
    ``started`` event until its ``stopping`` event."""

    def __init__(self, runner: Runner, stack: ReferenceStack, interval: float) -> None:
        self.runner = runner
        self.stack = stack
        self.interval = interval
        self.samples: list[Sample] = []
        self._cpu: dict[str, tuple[float, dict[int, float]]] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        runner.events.started.add_listener(self._on_started)
        runner.events.stopping.add_listener(self._on_stopping)

    def components(self) -> dict[str, tuple[list[int], bool]]:
        """Component name → (pids, whether to take the whole process tree as PSS)."""
        out: dict[str, tuple[list[int], bool]] = {}
        for proc in self.runner.procs:
            name = proc.name
            if name.startswith("locust-worker"):
                name = name.replace("locust-worker", "generator")
            elif name == "locust":
                name = "generator"  # a standalone Locust is generator and master in one
            elif name == "locust-master":
                name = "master"
            out[name] = ([proc.pid], False)
        for w in self.stack.manifest.wallets:
            if w.process is not None:
                out[w.name] = ([w.process.pid], False)
        pg = self.stack.manifest.postgres
        if pg is not None and pg.process is not None:
            out["postgres"] = ([pg.process.pid], True)
        if self.stack.manifest.toxiproxy is not None:
            out["toxiproxy"] = ([self.stack.manifest.toxiproxy.pid], False)
        out["orchestrator"] = ([os.getpid()], False)
        return out

    def _process(self, pid: int) -> psutil.Process:
        # the same Process object every time: psutil checks the pid was not recycled
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def sample_once(self, t: float) -> None:
        now = time.monotonic()
        for name, (pids, tree) in self.components().items():
            memory = shared = 0
            times: dict[int, float] = {}
            seen: list[int] = []
            for pid in pids:
                try:
                    root = self._process(pid)
                    procs = [root, *root.children(recursive=True)] if tree else [root]
                except psutil.Error:
                    continue
                for proc in procs:
                    try:
                        with proc.oneshot():
                            cpu = proc.cpu_times()
                            if tree:
                                pss, in_shared = pss_split(proc.pid)
                                memory += pss - in_shared
                                shared += in_shared
                            else:
                                rss = proc.memory_info().rss
                                if not rss:  # exiting (a zombie has no memory): gone
                                    continue
                                memory += rss
                    except psutil.Error:
                        continue
                    times[proc.pid] = cpu.user + cpu.system
                    seen.append(proc.pid)
            if not seen or not memory:  # every process of it is gone (the run is ending)
                continue
            before = self._cpu.get(name)
            cpu_pct = 0.0
            if before is not None and now > before[0]:
                # a process that appeared since the last sample counts from zero
                used = sum(v - before[1].get(p, 0.0) for p, v in times.items())
                cpu_pct = max(0.0, 100.0 * used / (now - before[0]))
            self._cpu[name] = (now, times)
            self.samples.append(Sample(round(t, 2), name, pids, memory, round(cpu_pct, 1), shared))

    def _loop(self) -> None:
        t0 = self.runner.t0 or time.time()
        while not self._stop.is_set():
            try:
                self.sample_once(time.time() - t0)
            except Exception as exc:  # a sample must never stop the run
                print(f"soak: sampling failed: {exc!r}", file=sys.stderr)
            self._stop.wait(self.interval)

    def _on_started(self, run: Runner, t0: float) -> None:
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)
        self._thread.start()

    def _on_stopping(self, run: Runner, reason: str | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


# -- the profile and the knee -----------------------------------------------------------------


def soak_profile(source: Path, rate: float, minutes: float) -> str:
    """A ramp then one steady stage at ``rate``, with ``source``'s journeys, client and users."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    keep = {k: raw[k] for k in ("seed", "users", "journeys", "client", "network") if k in raw}
    total = minutes * 60
    ramp = 30.0 if total >= 600 else 10.0
    body = {
        "name": "soak",
        "description": f"soak: {rate:g}/s for {minutes:g} minutes",
        "stages": [
            {"name": "ramp", "duration": f"{ramp:g}s", "curve": "linear", "rate": f"{rate:g}/s"},
            {"name": "steady", "duration": f"{total - ramp:g}s", "rate": f"{rate:g}/s"},
        ],
        **keep,
    }
    return yaml.safe_dump(body, sort_keys=False)


def find_knee(args: argparse.Namespace, stack_dir: Path, out: Path) -> float:
    from loadkit.capacity.plan import CapacityOptions
    from loadkit.capacity.search import find_capacity

    print(f"searching the capacity knee (up to {args.max_rate:g}/s, {args.hold:g}s steps)…")
    result = find_capacity(
        CapacityOptions(
            profile=args.profile,
            stack_dir=stack_dir,
            max_rate=args.max_rate,
            hold_s=args.hold,
            workers=args.workers,
            out=out / "capacity",
            command=["bench/soak.py", "capacity"],
        ),
        on_event=lambda line: print(f"  {line}"),
    )
    knee = result.knee_rate if result.knee_rate is not None else result.at_least
    if not knee:
        raise SystemExit("soak: the capacity search found no rate that met the objective")
    print(f"knee: {knee:g}/s ({result.outcome})")
    return float(knee)


# -- analysis ---------------------------------------------------------------------------------


def warmup_s(minutes: float) -> float:
    """The first 5 minutes, or the first sixth of a run shorter than 30 minutes."""
    return min(300.0, minutes * 60 / 6)


def per_minute(timeline: Timeline, seconds: float) -> list[Minute]:
    out = []
    for m in range(math.ceil(seconds / 60)):
        b = timeline.select("action", t_from=m * 60, t_to=(m + 1) * 60)
        out.append(
            Minute(m, b.answered, b.count("busy"), round(b.busy_rate, 6), b.percentile_ms(99))
        )
    return out


def pss_split(pid: int) -> tuple[int, int]:
    """``(pss, shared)`` of a process in bytes from ``/proc/PID/smaps``: its whole PSS, and the
    PSS of its shared mappings (``s`` in the permissions: PostgreSQL's shared memory — the buffer
    pool, its dynamic shared memory). Summed over processes, PSS counts a shared page once."""
    pss = shared = 0
    in_shared = False
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                head = line.split(maxsplit=2)
                if not head:
                    continue
                if "-" in head[0] and len(head) > 1 and len(head[1]) == 4:
                    in_shared = head[1][3] == "s"  # a mapping's header: address perms ...
                elif head[0] == "Pss:":
                    kb = int(head[1]) * 1024
                    pss += kb
                    if in_shared:
                        shared += kb
    except OSError as exc:
        raise psutil.NoSuchProcess(pid) from exc
    return pss, shared


def growth_of(samples: list[Sample], warm: float, end: float) -> list[Growth]:
    """Per component: mean memory of the first three samples after the warm-up against the
    mean of the last three before the load ends (``end``; the drain after it is left out)."""
    out = []
    for name in dict.fromkeys(s.component for s in samples):
        mine = [s for s in samples if s.component == name and warm <= s.t <= end]
        if len(mine) < 2:
            continue
        k = max(1, min(3, len(mine) // 3))
        base = sum(s.rss for s in mine[:k]) / k
        final = sum(s.rss for s in mine[-k:]) / k
        cpu = sum(s.cpu for s in mine) / len(mine)
        third = max(1, len(mine) // 3)
        first = sum(s.cpu for s in mine[:third]) / third
        last = sum(s.cpu for s in mine[-third:]) / third
        shared_base = sum(s.shared for s in mine[:k]) / k
        shared_final = sum(s.shared for s in mine[-k:]) / k
        out.append(
            Growth(
                name,
                round(base / 2**20, 1),
                round(final / 2**20, 1),
                final / base - 1,
                round(cpu, 1),
                round(first, 1),
                round(last, 1),
                round(shared_base / 2**20, 1),
                round(shared_final / 2**20, 1),
            )
        )
    return out


def analyse(result: SoakResult, timeline: Timeline) -> None:
    seconds = result.minutes * 60
    warm = result.warmup_s
    result.per_minute = per_minute(timeline, seconds)
    result.growth = growth_of(result.samples, warm, seconds)
    third = (seconds - warm) / 3
    first = timeline.select("action", t_from=warm, t_to=warm + third).percentile_ms(99)
    last = timeline.select("action", t_from=seconds - third, t_to=seconds).percentile_ms(99)
    result.p99_first_ms, result.p99_last_ms = first, last
    if first and last is not None:
        result.p99_drift = last / first - 1
    totals = timeline.totals("action")
    result.busy, result.unsent, result.answered = (
        totals.count("busy"),
        totals.count("unsent"),
        totals.answered,
    )
    result.verdicts = {
        **{f"memory {g.component}": g.growth <= MAX_GROWTH for g in result.growth},
        "p99 drift": result.p99_drift is not None and result.p99_drift <= MAX_P99_DRIFT,
        "busy rate 0": result.busy == 0,
    }


def print_result(result: SoakResult) -> None:
    print(
        f"\nsoak: {result.rate:g}/s for {result.minutes:g} min (warm-up {result.warmup_s:g}s), "
        f"{result.answered} actions answered, {result.busy} busy, {result.unsent} unsent; "
        f"run {result.status}: {result.run_dir}"
    )
    print(
        f"\n{'component':<14} {'after warm-up':>13} {'end':>9} {'growth':>8} "
        f"{'cpu % first→last third':>23}  target"
    )
    for g in result.growth:
        ok = "PASS" if g.growth <= MAX_GROWTH else "FAIL"
        cpu = f"{g.cpu_first:.1f} → {g.cpu_last:.1f}"
        print(
            f"{g.component:<14} {g.baseline_mb:>10.1f} MB {g.final_mb:>6.1f} MB "
            f"{g.growth:>+7.1%} {cpu:>23}  {ok} (≤ {MAX_GROWTH:.0%})"
        )
        if g.shared_final_mb:
            print(
                f"{'  ' + g.component + ' shared':<14} {g.shared_baseline_mb:>10.1f} MB "
                f"{g.shared_final_mb:>6.1f} MB  (buffer pool, bounded by shared_buffers: "
                "not a target; the line above is private memory)"
            )
    print(f"\n{'minute':>6} {'answered':>9} {'busy':>6} {'p99 ms':>8}")
    for m in result.per_minute:
        p99 = f"{m.p99_ms:.1f}" if m.p99_ms is not None else "-"
        print(f"{m.minute:>6} {m.answered:>9} {m.busy:>6} {p99:>8}")
    drift = f"{result.p99_drift:+.1%}" if result.p99_drift is not None else "n/a"
    print(
        f"\np99 first third {result.p99_first_ms} ms, last third {result.p99_last_ms} ms: "
        f"drift {drift}  {'PASS' if result.verdicts['p99 drift'] else 'FAIL'} "
        f"(≤ {MAX_P99_DRIFT:.0%})"
    )
    print(f"busy rate {result.busy}  {'PASS' if result.verdicts['busy rate 0'] else 'FAIL'} (0)")
    failed = [k for k, ok in result.verdicts.items() if not ok]
    print("\nsoak: " + ("PASS" if not failed else "FAIL: " + ", ".join(failed)))


def write_chart(result: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, cpu, lat) = plt.subplots(3, 1, figsize=(10, 12), sharex=False)
    for name in dict.fromkeys(s.component for s in result.samples):
        # a process already gone reads 0: it is not a drop in memory
        mine = [s for s in result.samples if s.component == name and s.rss > 0]
        ts = [s.t / 60 for s in mine]
        mem.plot(ts, [s.rss / 2**20 for s in mine], label=name)
        cpu.plot(ts, [s.cpu for s in mine], label=name)
    for ax in (mem, cpu):
        ax.axvline(result.warmup_s / 60, color="grey", linestyle=":", linewidth=1)
        # under the plot: never over a line
        ax.legend(fontsize="small", ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
        ax.grid(alpha=0.3)
    mem.set_ylabel("memory (MB; postgres: private)")
    mem.set_xlabel("run minute")
    mem.set_title(f"soak: {result.rate:g}/s for {result.minutes:g} min")
    cpu.set_ylabel("CPU (% of one core)")
    cpu.set_xlabel("run minute")
    minutes = [m.minute + 0.5 for m in result.per_minute]
    lat.plot(minutes, [m.p99_ms or 0 for m in result.per_minute], marker="o", label="p99 ms")
    lat.set_ylabel("p99 of actions (ms, line)")
    lat.set_ylim(bottom=0)
    lat.set_xlabel("run minute")
    busy = lat.twinx()
    rates = [m.busy_rate * 100 for m in result.per_minute]
    busy.bar(minutes, rates, alpha=0.3, color="red", label="busy %")
    busy.set_ylim(0, max(1.0, *rates) * 1.1)  # 0 busy sits on the axis, never below it
    busy.set_ylabel("busy (% of actions, bars)")
    lat.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- main -------------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> SoakResult:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="loadkit-soak-"))
    work.chmod(0o755)
    users = load_profile(args.profile).users.accounts
    print(f"starting the reference stack ({args.instances} wallet instances)…")
    # the stack dies with this process however it ends (a SIGKILL too): see stack/watchdog.py
    watchdog = Watchdog.start(work, work / "watchdog.log")
    watchdog.watch_stack(work / "stack")
    try:
        stack = ReferenceStack.up(
            work / "stack", StackOptions(instances=args.instances, users=users)
        )
    except BaseException:
        watchdog.release()
        raise
    try:
        knee: float | None = args.knee
        if args.rate is not None:
            rate = float(args.rate)
        else:
            if knee is None:
                knee = find_knee(args, stack.stack_dir, out)
            rate = round(SHARE * knee, 1)
        profile = out / "soak-profile.yaml"
        profile.write_text(soak_profile(args.profile, rate, args.minutes))
        # the live progress `loadkit run` computes every tick (a terminal shows it); here
        # computed and dropped, so the orchestrator does the same work as the CLI's
        runner = Runner(
            RunOptions(
                profile=profile,
                stack_dir=stack.stack_dir,
                workers=args.workers,
                out=out / "runs",
                command=["bench/soak.py", *sys.argv[1:]],
            ),
            on_progress=lambda progress: None,
        )
        sampler = Sampler(runner, stack, args.interval)
        print(f"soak: {rate:g}/s for {args.minutes:g} min, sampling every {args.interval:g}s…")
        run = runner.run()
        result = SoakResult(
            rate=rate,
            knee=knee,
            minutes=args.minutes,
            interval_s=args.interval,
            warmup_s=warmup_s(args.minutes),
            run_dir=str(run.run_dir),
            status=str(run.status),
            samples=sampler.samples,
        )
        analyse(result, run.timeline)
    finally:
        try:
            stack.down()
        finally:
            watchdog.release()
            shutil.rmtree(work, ignore_errors=True)
    (out / "soak.json").write_text(json.dumps(result.to_json(), indent=1))
    write_chart(result, out / "soak.png")
    print_result(result)
    print(f"\nwrote {out / 'soak.json'} and {out / 'soak.png'}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, help="hold this rate (no knee search)")
    parser.add_argument("--knee", type=float, help="hold 60%% of this knee (no knee search)")
    parser.add_argument("--profile", type=Path, default=ROOT / "profiles" / "smoke.yaml")
    parser.add_argument("--max-rate", type=float, default=1500.0, help="for the knee search")
    parser.add_argument("--hold", type=float, default=12.0, help="knee search: seconds per step")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="Locust workers (0: standalone)")
    parser.add_argument(
        "--out", type=Path, default=Path(f"reports/soak-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.interval <= 0:
        parser.error("--minutes and --interval must be above 0")
    result = soak(args)
    return 0 if all(result.verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
