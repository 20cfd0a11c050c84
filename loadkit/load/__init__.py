"""The Locust side of loadkit: what runs inside the Locust processes of a run.

``locustfile`` (the entry Locust loads), ``driver`` (the open-model driver user and its sender
pool), ``schedule`` (arrival times from the profile), ``client`` (the fast HTTP client),
``journeys`` (one registry of journey kinds: wallet, declarative HTTP, ``module:Class``),
``recorder`` (per-second counts and histograms), ``coordinator`` (master ↔ workers), and
``runconfig`` (``run-config.json``, the orchestrator's input to every Locust process).

Nothing here imports chaos, gate, integrity, report, stack or run: the orchestrator
(:mod:`loadkit.run`) starts these processes and reads what they write into the run directory.
The profile model lives in :mod:`loadkit.profile`.
"""
