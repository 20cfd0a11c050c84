"""Integrity sources against real endpoints (tests/integrity/test_runs.py has whole runs)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadkit.integrity.sources import HttpLedger
from loadkit.profile.model import HttpIntegrityCheck


@pytest.fixture
def ledger_endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A tiny HTTP endpoint answering two applied keys and keeping each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers.items()))
            body = json.dumps(["k-1", "k-2"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/applied", seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_ledger_headers_take_env_templates_and_vars(
    ledger_endpoint: tuple[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Integrity headers are written like service headers (``{env.NAME}``) or as ``$NAME``:
    both reach the endpoint filled in, never as the template text."""
    url, seen = ledger_endpoint
    monkeypatch.setenv("SHOP_TOKEN", "s3cret")
    check = HttpIntegrityCheck(
        url, {"Authorization": "Bearer {env.SHOP_TOKEN}", "X-Also": "${SHOP_TOKEN}"}
    )
    view = HttpLedger(check).fetch(0.0)
    assert sorted(a.key for a in view.applied) == ["k-1", "k-2"]
    assert seen[-1]["Authorization"] == "Bearer s3cret"
    assert seen[-1]["X-Also"] == "s3cret"
