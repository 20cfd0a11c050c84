"""The web view's server on its own (no run): assets from the package, the token off loopback,
loopback names only on loopback, and a halt only with the page's confirmation header."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from loadkit.live.address import Listen
from loadkit.live.server import LiveServer
from loadkit.live.state import LiveState


@pytest.fixture
def served() -> Iterator[tuple[LiveServer, list[str]]]:
    halts: list[str] = []
    server = LiveServer(
        Listen("127.0.0.1", 0, token="s3cret"),
        LiveState("t"),
        lambda reason, who: halts.append(f"{reason} by {who}") is None,
    )
    server.start()
    try:
        yield server, halts
    finally:
        server.close()


def test_page_assets_and_the_token(served: tuple[LiveServer, list[str]]) -> None:
    server, _ = served
    base = f"http://127.0.0.1:{server.port}"
    assert server.url == f"{base}/?token=s3cret"
    page = httpx.get(server.url)
    assert page.status_code == 200 and "/static/live.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(f"{base}/").status_code == 401, "no token, no page"
    assert httpx.get(f"{base}/api/live?token=wrong").status_code == 401
    live = httpx.get(f"{base}/api/live", headers={"X-Loadkit-Token": "s3cret"}).json()
    assert live["run"]["status"] == "waiting" and live["points"] == []
    js = httpx.get(f"{base}/static/uPlot.iife.min.js")
    assert js.status_code == 200 and "uPlot" in js.text, "assets ship in the package"
    assert httpx.get(f"{base}/static/view.py").status_code == 404, "only the shipped assets"
    assert httpx.get(f"{base}/files/report.html?token=s3cret").status_code == 404


def test_halt_needs_the_confirmation_header(served: tuple[LiveServer, list[str]]) -> None:
    server, halts = served
    url = f"http://127.0.0.1:{server.port}/api/halt?token=s3cret"
    assert httpx.post(url, json={}).status_code == 403 and halts == []
    done = httpx.post(url, json={"note": "sre"}, headers={"X-Loadkit-Halt": "confirmed"})
    assert done.status_code == 200 and halts == ["halted from the live view by 127.0.0.1 (sre)"]


def test_loopback_answers_loopback_names_only() -> None:
    server = LiveServer(Listen("127.0.0.1", 0), LiveState("t"), lambda r, w: False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/api/live"
        assert httpx.get(url).status_code == 200
        rebound = httpx.get(url, headers={"Host": f"evil.example:{server.port}"})
        assert rebound.status_code == 421
    finally:
        server.close()
