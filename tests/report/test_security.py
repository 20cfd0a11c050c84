"""The report's "security throttling" section: security.json's counters, next to the busy rate,
in every format; absent without the file."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from loadkit.report.html import render_html
from loadkit.report.jsonreport import render_json
from loadkit.report.markdown import render_markdown
from loadkit.report.metrics import compute_metrics
from loadkit.report.security import security_rows
from loadkit.report.terminal import render_terminal
from loadkit.rundir import RunDir
from tests.report.test_jsonreport import _validate

SECURITY = {
    "schema": "loadkit.security/v1",
    "source": "reference",
    "from": 1795000000.0,
    "to": 1795000090.0,
    "events": {
        "login_failed": 12,
        "login_locked": 2,
        "otp_failed": 7,
        "otp_locked": 1,
        "velocity": 1234,
    },
    "refusals": {"INSUFFICIENT_FUNDS": 40, "OTP_REQUIRED": 30, "INVALID_CREDENTIALS": 12},
    "instances": ["wallet-1", "wallet-2"],
    "notes": ["wallet-2: restarted during the run; counted since its restart"],
}


def test_each_format_shows_the_counters_next_to_the_busy_rate(fault_run: Path) -> None:
    RunDir(fault_run).write_json("security.json", SECURITY)
    m = compute_metrics(fault_run)
    rows = dict(security_rows(m))
    assert rows["busy rate (user actions)"] == f"{m.total.action.busy_rate:.1%}"
    assert rows["throttled requests (429)"] == "6"  # one a second every 10 s, out of the fault
    assert rows["users over the policy's rate (velocity)"] == "1,234"
    assert rows["wrong one-time passwords"] == "7" and rows["OTP challenges locked"] == "1"
    assert rows["failed logins"] == "12" and rows["accounts locked (logins)"] == "2"
    assert rows["refusals (4xx but 429), by reason"] == "82"
    assert [label for label, _ in security_rows(m)][-4:] == [
        "  INSUFFICIENT_FUNDS",
        "  OTP_REQUIRED",
        "  INVALID_CREDENTIALS",
        "note",
    ]

    doc = json.loads(render_json(m))
    _validate(doc)
    assert doc["security"] == SECURITY
    md = render_markdown(m)
    assert "#### Security throttling" in md
    assert "| users over the policy's rate (velocity) | 1,234 |" in md
    html = render_html(m)
    assert '<section id="security"><h2>Security throttling</h2>' in html
    assert "wallet-2: restarted during the run" in html
    console = Console(record=True, width=100)
    render_terminal(m, console)
    text = console.export_text()
    assert "Security throttling" in text and "1,234" in text


def test_no_file_no_section(fault_run: Path) -> None:
    m = compute_metrics(fault_run)
    assert m.security is None and security_rows(m) == []
    assert "Security throttling" not in render_markdown(m)
    assert 'id="security"' not in render_html(m)
    _validate(json.loads(render_json(m)))
