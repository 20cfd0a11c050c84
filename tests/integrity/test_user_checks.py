"""The integrity check on a user's own service (tests/integrity/pay_service.py, backed by a real
PostgreSQL table): a declarative HTTP step marked ``money:`` logs its payments, and the check the
profile declares (an HTTP endpoint, or a SQL query) finds exactly the payments the service
acknowledged and never wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadkit.integrity import SqlLedger, check_run
from loadkit.profile.model import SqlIntegrityCheck
from loadkit.rundir import RunDir
from loadkit.rundir.acks import read_records
from loadkit.stack.ports import free_port

ROOT = Path(__file__).parents[2]
LOSE_EVERY = 7

PROFILE = """
name: shop-pay
users: {{accounts: 50}}
stages:
  - {{name: steady, duration: 5s, rate: 40/s}}
journeys:
  - name: pay
    http:
      - method: POST
        path: /pay
        headers:
          Idempotency-Key: "{{step.idempotency_key}}"
        json: {{amount: 100}}
        expect: {{ok: [201]}}
        money: {{id_field: payment.id, amount: amount}}
  - name: declined
    weight: 0.2
    http:
      - method: POST
        path: /pay-busy
        headers:
          Idempotency-Key: "{{step.idempotency_key}}"
        json: {{amount: 100}}
        money: true
client:
  timeout: 3s
  # each retry gets a fresh key: every key tried is logged (outcome unknown)
  retries: {{attempts: 2, backoff: 100ms, honour_retry_after: false, reuse_idempotency_key: false}}
integrity:
  http:
    url: {url}/applied
"""


@pytest.fixture
def pay_service(pg_dsn: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.integrity.pay_service", str(port), pg_dsn),
            *("--lose-every", str(LOSE_EVERY)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "pay service died"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_declared_http_check_and_a_sql_check_find_the_lost_payments(
    pay_service: str, pg_dsn: str, tmp_path: Path
) -> None:
    profile = tmp_path / "shop.yaml"
    profile.write_text(PROFILE.format(url=pay_service))
    out = tmp_path / "reports"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "loadkit", "run", str(profile)),
            *("--target", pay_service, "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 1, run.stderr[-3000:] + run.stdout[-3000:]
    assert "money integrity VIOLATED" in run.stderr
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    stats = httpx.get(f"{pay_service}/stats").json()
    assert stats["dropped"] >= 20  # 200 payments, every 7th dropped

    records = [r for p in RunDir(run_dir).ack_logs() for r in read_records(p)]
    lines = [a for a in records if a["view"] != "sent"]
    # every key on record (each went on record before its request left) has its final view
    assert {a["key"] for a in records} == {a["key"] for a in lines}
    acks = [a for a in lines if a["journey"] == "pay"]
    assert len(acks) == stats["answered"]
    assert all(a["view"] == "acknowledged" and a["amount"] == 100 for a in acks)
    assert sum(1 for a in acks if a["transaction_id"] is None) == stats["dropped"]
    declined = [a for a in lines if a["journey"] == "declined"]
    assert declined and all(a["view"] == "unknown" for a in declined)
    assert len({a["key"] for a in declined}) == len(declined)  # a fresh key per attempt
    assert sum(1 for a in declined if a["status"] == 503) * 2 == len(declined)

    data = json.loads((run_dir / "integrity.json").read_text())
    assert data["source"] == "http" and data["ok"] is False
    assert data["lost"] == stats["dropped"]
    assert data["acks"]["acknowledged"] == stats["answered"]
    assert data["duplicated"] == data["unexpected"] == 0
    assert data["acks"]["unknown"] == data["unknown_not_applied"] == len(declined)
    assert data["money_conserved"] is None and data["negative_balances"] is None

    # the same run checked against the service's database with a SQL query
    query = "SELECT idem_key, count(*) FROM payments WHERE created_at >= $1 GROUP BY idem_key"
    result = check_run(run_dir, SqlLedger(SqlIntegrityCheck(query, dsn=pg_dsn)), write=False)
    assert result.source == "sql" and result.lost == stats["dropped"] and result.ok is False
