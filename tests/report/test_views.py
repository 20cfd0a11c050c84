"""What every renderer says the same way: a run that did not verify some certificates
(``verify: false`` on its target or one of its services) says so in every report, beside (not
instead of) the banner of a run that did not end as planned."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
from rich.console import Console

from loadkit.report.html import render_html
from loadkit.report.jsonreport import SCHEMA_PATH, report_dict
from loadkit.report.junit import render_junit
from loadkit.report.markdown import render_markdown
from loadkit.report.metrics import compute_metrics
from loadkit.report.rundata import insecure_urls
from loadkit.report.terminal import render_terminal
from loadkit.report.views import banners, status_banner, tls_banner
from tests.report.rundirs import RunDirBuilder

#: run.json's target of a --system run: the first service unverified, another one too
TARGET = {
    "kind": "system",
    "urls": ["https://shop.test.internal:8443"],
    "insecure_urls": ["https://shop.test.internal:8443"],
    "services": {
        "shop": {
            "urls": ["https://shop.test.internal:8443"],
            "insecure_urls": ["https://shop.test.internal:8443"],
        },
        "pay": {
            "urls": ["https://pay.test.internal"],
            "insecure_urls": ["https://pay.test.internal"],
        },
        "cdn": {"urls": ["https://cdn.test.internal"]},
    },
}
URLS = ["https://shop.test.internal:8443", "https://pay.test.internal"]


def _run(tmp_path: Path, *, status: str = "completed", target: dict[str, object] | None) -> Path:
    rd = RunDirBuilder(tmp_path / f"run-{status}", status=status, target=target)
    for t in range(10):
        rd.second(t, "steady", ok=20, busy={"throttled": 1}, lat_ms=[10.0, 20.0])
    return rd.write()


def _terminal(path: Path) -> str:
    out = io.StringIO()
    render_terminal(compute_metrics(path), Console(file=out, width=120, color_system=None))
    return out.getvalue()


def test_insecure_urls_of_the_target_and_every_service() -> None:
    assert insecure_urls(TARGET) == URLS
    assert insecure_urls({"urls": ["https://a"]}) == []
    assert insecure_urls({"services": None, "insecure_urls": None}) == []


def test_every_report_says_tls_was_not_verified(tmp_path: Path) -> None:
    path = _run(tmp_path, target=TARGET)
    m = compute_metrics(path)
    assert m.insecure_urls == URLS
    assert status_banner(m) is None  # the run itself completed
    banner = tls_banner(m)
    assert banner is not None and banner.kind == "bad" and banner.title == "TLS NOT VERIFIED"
    assert all(url in banner.text for url in URLS)

    html = render_html(m)
    assert '<div class="banner" role="alert" id="tls"><b>TLS NOT VERIFIED</b>' in html
    assert "https://pay.test.internal" in html
    md = render_markdown(m)
    assert "> ⚠️ **TLS NOT VERIFIED**: the certificates of https://shop.test.internal:8443, " in md
    terminal = _terminal(path)
    assert "TLS NOT VERIFIED" in terminal and "(verify: false)" in terminal, terminal
    doc = report_dict(m)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert doc["insecure_urls"] == URLS
    assert doc["tls_banner"]["title"] == "TLS NOT VERIFIED" and doc["status_banner"] is None
    props = {
        p.get("name"): p.get("value")
        for p in ET.fromstring(render_junit(m)).iter("property")
        if p.get("name") == "tls_banner"
    }
    assert props["tls_banner"].startswith("TLS NOT VERIFIED: the certificates of")


def test_an_aborted_unverified_run_shows_both_banners(tmp_path: Path) -> None:
    m = compute_metrics(_run(tmp_path, status="aborted", target=TARGET))
    assert [b.title.split()[0:2] for b in banners(m)] == [["Run", "ABORTED"], ["TLS", "NOT"]]
    html = render_html(m)
    assert html.index('id="status"') < html.index('id="tls"')
    md = render_markdown(m)
    assert md.index("Run ABORTED") < md.index("TLS NOT VERIFIED")


def test_a_verified_run_has_no_tls_banner(tmp_path: Path) -> None:
    verified = {"kind": "http", "urls": ["https://127.0.0.1:1"], "tls": {"verify": True}}
    for target in (verified, None):
        path = _run(tmp_path / str(bool(target)), target=target)
        m = compute_metrics(path)
        assert m.insecure_urls == [] and tls_banner(m) is None
        assert 'id="tls"' not in render_html(m) and "TLS NOT VERIFIED" not in render_markdown(m)
        assert "TLS NOT VERIFIED" not in _terminal(path)
        doc = report_dict(m)
        assert doc["insecure_urls"] == [] and doc["tls_banner"] is None
