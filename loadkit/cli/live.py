"""``--web``, ``--metrics`` and ``--push-to`` on ``loadkit run``, ``loadkit chaos run`` and
``loadkit capacity``: the arguments, and opening and closing the live outputs around a command
(:mod:`loadkit.live` does the work)::

    add_live_args(parser)
    view = open_live(args, runner.allowlist, title=profile.name, console=console)
    try:
        ...                               # view.attach(runner), the run
    finally:
        close_live(view, console)
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from loadkit.live import LiveView
    from loadkit.safety import Allowlist


def add_live_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("watching it live (docs/live.md)")
    group.add_argument(
        "--web",
        metavar="[ADDR:]PORT",
        help="serve a live web view with a halt button on this port (127.0.0.1 unless another "
        "address is allowed with --allow; then a token is printed and needed)",
    )
    group.add_argument(
        "--metrics",
        metavar="[ADDR:]PORT",
        help="serve OpenMetrics for Prometheus on this port (same address rules as --web)",
    )
    group.add_argument(
        "--push-to",
        metavar="URL",
        help="push the same metrics to this Prometheus Pushgateway every 5 s and at the end",
    )


def busy_limit_of(slo: Any) -> tuple[float, str] | None:
    """The whole-run action busy-rate objective of an SLO (what the alert rules compare to)."""
    if slo is None:
        return None
    for obj in slo.objectives:
        if (
            obj.measure == "max_busy_rate"
            and not (obj.phase or obj.fault or getattr(obj, "cause", None))
            and (obj.level or "action") == "action"
            and obj.limit is not None
        ):
            return float(obj.limit), f"slo {slo.name}"
    return None


def open_live(
    args: argparse.Namespace,
    allowlist: Allowlist,
    *,
    title: str,
    console: Console,
    slo: Any = None,
) -> LiveView | None:
    """The live outputs the arguments ask for, serving (None when none was asked for); the
    URLs (with the token off loopback) are printed."""
    web, metrics = getattr(args, "web", None), getattr(args, "metrics", None)
    push_to = getattr(args, "push_to", None)
    if not (web or metrics or push_to):
        return None  # nothing asked for: the live package is not even imported
    from loadkit.live import LiveOptions, LiveView

    options = LiveOptions(web=web, metrics=metrics, push_to=push_to)
    view = LiveView(options, allowlist, title=title, busy_limit=busy_limit_of(slo))
    view.start()
    for what, url in view.urls():
        console.print(f"{what}: {url}", highlight=False, soft_wrap=True)
    return view


def close_live(view: LiveView | None, console: Console, *, linger: bool = True) -> None:
    """Stop serving: with ``linger``, the reports stay served while the page is open."""
    if view is None:
        return
    from loadkit.live.view import LINGER_S

    view.close(
        linger_s=LINGER_S if linger else 0.0,
        say=lambda line: console.print(line, highlight=False, soft_wrap=True),
    )
