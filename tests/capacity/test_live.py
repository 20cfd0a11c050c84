"""A capacity search watched live: each pass's run is followed by the same view, and the halt
button stops the pass that goes and starts no other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from loadkit.capacity.search import CapacityOptions, CapacitySearch
from loadkit.live import LiveOptions, LiveView
from loadkit.safety import Allowlist
from tests.conftest import PlainService

PROFILE = """
name: cap-live
stages: [{name: steady, duration: 10s, rate: 40/s}]
journeys:
  - name: health
    http:
      - {name: health, path: /healthz}
client: {timeout: 1s}
"""


def test_halt_from_the_live_view_ends_the_search(
    plain_service: PlainService, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(PROFILE)
    search = CapacitySearch(
        CapacityOptions(
            profile=tmp_path / "p.yaml",
            target=plain_service.url,
            start_rate=10,
            max_rate=60,
            step=10,
            hold_s=3,
            warmup_s=1,
            out=tmp_path / "out",
        )
    )
    view = LiveView(LiveOptions(web="127.0.0.1:0"), Allowlist(), title="capacity")
    view.start()
    assert view.web is not None
    base = view.web.url.rstrip("/")
    search.on_runner = lambda runner: view.attach(runner, kind="capacity", also_halt=search.halt)
    done: dict[str, object] = {}
    thread = threading.Thread(target=lambda: done.update(result=search.run()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # the first pass runs and the page has its numbers
            body = httpx.get(f"{base}/api/live").json()
            if body["run"]["kind"] == "capacity" and len(body["points"]) >= 4:
                break
            assert time.monotonic() < deadline, body["run"]
            time.sleep(0.3)
        halted = httpx.post(f"{base}/api/halt", headers={"X-Loadkit-Halt": "confirmed"})
        assert halted.status_code == 200
        thread.join(90)
        body = httpx.get(f"{base}/api/live").json()
    finally:
        view.close()
    result = done["result"]
    assert [p.name for p in result.passes] == ["coarse"]  # type: ignore[attr-defined]
    assert "aborted" in result.passes[0].status  # type: ignore[attr-defined]
    assert any("halted from the live view" in n for n in result.notes)  # type: ignore[attr-defined]
    assert body["run"]["status"] == "finished" and "report.html" in body["reports"]
