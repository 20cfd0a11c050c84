"""Watching a run while it goes: a web page served by the run (``--web``), an OpenMetrics
endpoint for Prometheus (``--metrics``) and pushes to a Pushgateway (``--push-to``), for
``loadkit run``, ``loadkit chaos run`` and ``loadkit capacity`` (docs/live.md)::

    from loadkit.live import LiveOptions, LiveView
    view = LiveView(LiveOptions(web="8089"), runner.allowlist, title="double11")
    view.start(); view.attach(runner)
    print(view.urls())           # [("live view", "http://127.0.0.1:8089/")]
    try:
        runner.run()
    finally:
        view.close()

Modules: ``address`` (``[ADDR:]PORT``, the allowlist and the token), ``series`` (per-second
numbers from the timeline or the probes), ``state`` (what the page and the metrics show),
``server`` (the page, its assets, the halt action, the report files), ``metrics`` (the
``prometheus_client`` collector, its server, the Pushgateway), ``view`` (:class:`LiveView` and
the feeds from a run, a game day, a capacity pass).
"""

from loadkit.live.address import Listen, parse_listen
from loadkit.live.view import GamedayFeed, LiveOptions, LiveView, RunFeed

__all__ = ["GamedayFeed", "Listen", "LiveOptions", "LiveView", "RunFeed", "parse_listen"]
