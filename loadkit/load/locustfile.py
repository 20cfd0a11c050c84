"""The locustfile of every loadkit run: ``locust -f loadkit/load/locustfile.py``.

It defines one user class, :class:`~loadkit.load.coordinator.DriverUser` (one per load process),
and hooks loadkit into Locust's events; everything else lives in
:mod:`loadkit.load.coordinator`. The orchestrator builds the command lines with
:func:`loadkit.load.runconfig.locust_argv`::

    python -m locust -f loadkit/load/locustfile.py --headless -u 1 -r 1 \\
        --csv RUN_DIR/locust --loadkit-config RUN_DIR/run-config.json
"""

from locust import events

from loadkit.load.coordinator import COORDINATOR, DriverUser

COORDINATOR.install(events)

__all__ = ["DriverUser"]
