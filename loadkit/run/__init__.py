"""One run, orchestrated: the layer where target, load, chaos, SLO watch, integrity check and
reports meet. Everything ``loadkit run`` does is a call from here; capacity, the pytest plugin
and the demo use the same API::

    from loadkit.run import Runner, RunOptions
    runner = Runner(RunOptions(profile=Path("profiles/smoke.yaml")))
    runner.events.tick.add_listener(lambda run, t: print(t, run.timeline.totals("action").n))
    result = runner.run()

Modules: ``orchestrator`` (:class:`Runner`, :class:`RunOptions`, :class:`RunResult`),
``events`` (the run events and :class:`RunListener`), ``target`` (where the load goes),
``network`` (client network classes through Toxiproxy), ``chaos``, ``slo``, ``integrity`` (the
listeners the options attach), ``progress`` (the live display), ``gameday`` (``loadkit chaos
run``: a scenario without load), ``validate`` (``loadkit validate``: any file kind).
"""

from loadkit.run.events import EventHook, RunEvents, RunListener
from loadkit.run.orchestrator import Runner, RunOptions, RunResult, run_profile

__all__ = [
    "EventHook",
    "RunEvents",
    "RunListener",
    "RunOptions",
    "RunResult",
    "Runner",
    "run_profile",
]
