"""Your own services: a system loadkit did not start, on a test host that is not loopback (a
network namespace, 198.18.0.0/15), behind TLS with a CA of the test's own — the reference wallet
started as a plain process there. With the allowlist and the CA a gated run works end to end
(report, integrity, gate); without the allow entry nothing is sent; with the wrong CA every
answer is busy ``connection``/``tls`` and nothing crashes."""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import trustme

from loadkit.rundir import RunDir
from loadkit.stack.postgres import Postgres
from tests.forward import Forwarder
from tests.netns import TlsHost, issue
from tests.support import loadkit
from tests.wallet.conftest import ADMIN_TOKEN, OUTBOX_TOKEN, SECRET, make_wallet_db

USERS = 200
PROFILE = """\
name: foreign-wallet
users: {accounts: 200}
data:
  accounts: accounts.csv
stages:
  - {name: steady, duration: 6s, rate: 20/s}
journeys:
  - name: transfer
    target: wallet
    http:
      - name: login
        method: POST
        path: /v1/login
        json: {username: "{data.accounts.username}", password: wallet-pass}
        expect: {ok: [200]}
        extract: {token: token}
      - name: transfer
        method: POST
        path: /v1/transfers
        headers:
          Authorization: "Bearer {vars.token}"
          Idempotency-Key: "{step.idempotency_key}"
        json: {to_account: "{random.int 2..201}", amount: "{random.int 100..900}"}
        expect: {ok: [201]}
        money: {id_field: transaction_id, amount: amount}
client: {timeout: 3s}
"""
SLO = """\
objectives:
  - {name: few-busy, max_busy_rate: 5%}
  - {name: money, integrity: clean}
"""


@dataclass
class ForeignWallet:
    url: str
    host: TlsHost
    ca: Path

    def served(self, route: str) -> float:
        """How many requests the wallet answered on ``route`` (its own /metrics)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        text = httpx.get(f"{self.url}/metrics", verify=context, timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("wallet_http_requests_total{") and f'route="{route}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture
def foreign_wallet(tls_host: TlsHost, pg: Postgres, tmp_path: Path) -> Iterator[ForeignWallet]:
    """The reference wallet as a plain process in a namespace, serving HTTPS on its address;
    its database is the session's PostgreSQL, reached through a forwarder on the gateway."""
    dsn = make_wallet_db(pg, users=USERS)
    host = tls_host.host
    with Forwarder((host.gateway, 0), ("127.0.0.1", pg.port)) as fwd:
        parts = urlsplit(dsn)
        userinfo = parts.netloc.rsplit("@", 1)[0]
        via = urlunsplit(parts._replace(netloc=f"{userinfo}@{host.gateway}:{fwd.port}"))
        port = 8443
        log = (tmp_path / "foreign-wallet.log").open("wb")
        env = {
            **os.environ,
            "LOADKIT_WALLET_SECRET": SECRET,
            "LOADKIT_WALLET_ADMIN_TOKEN": ADMIN_TOKEN,
            "LOADKIT_WALLET_OTP_OUTBOX_TOKEN": OUTBOX_TOKEN,
        }
        proc = host.run(
            [
                *(sys.executable, "-m", "loadkit.wallet", "serve", "--host", host.address),
                *("--port", str(port), "--dsn", via, "--name", "foreign"),
                *("--tls-cert", str(tls_host.server.cert), "--tls-key", str(tls_host.server.key)),
            ],
            stdout=log,
            stderr=log,
            env=env,
        )
        url = f"https://{host.address}:{port}"
        context = ssl.create_default_context(cafile=str(tls_host.server.ca))
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "foreign-wallet.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/readyz", verify=context, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the foreign wallet never got ready"
            time.sleep(0.2)
        yield ForeignWallet(url, tls_host, tls_host.server.ca)
        log.close()


def _files(
    tmp_path: Path, wallet: ForeignWallet, *, allow: bool = True, ca: Path | None = None
) -> tuple[Path, Path, Path]:
    (tmp_path / "accounts.csv").write_text(
        "username\n" + "".join(f"user{i:05d}\n" for i in range(1, USERS + 1))
    )
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    address = urlsplit(wallet.url).hostname
    system = tmp_path / "system.yaml"
    system.write_text(
        "name: foreign\n"
        + (f"allow: [{address}]\n" if allow else "")
        + "services:\n"
        + f"  wallet:\n    url: {wallet.url}\n    tls: {{ca: {ca or wallet.ca}}}\n"
        + "integrity:\n  http:\n"
        + f"    url: {wallet.url}/admin/movements\n"
        + '    headers: {Authorization: "Bearer ${FOREIGN_ADMIN}"}\n'
    )
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    return profile, system, slo


def _run(*args: str, cwd: Path) -> tuple[int, str, Path | None]:
    out = cwd / "reports"
    done = loadkit("run", *args, "--out", str(out), cwd=cwd, env={"FOREIGN_ADMIN": ADMIN_TOKEN})
    dirs = [d for d in out.iterdir() if d.is_dir()] if out.exists() else []
    return done.returncode, done.stdout + done.stderr, dirs[0] if dirs else None


def test_a_gated_run_against_an_allowed_https_service(
    foreign_wallet: ForeignWallet, tmp_path: Path
) -> None:
    profile, system, slo = _files(tmp_path, foreign_wallet)
    code, output, run_dir = _run(
        str(profile), "--system", str(system), "--slo", str(slo), cwd=tmp_path
    )
    assert code == 0, output[-4000:]
    assert run_dir is not None
    rd = RunDir(run_dir)
    record = rd.read_record()
    assert record is not None and record["status"] == "completed"
    assert record["target"]["kind"] == "system"
    assert record["target"]["tls"]["ca"] == str(foreign_wallet.ca)
    totals = rd.read_timeline().totals("request")
    assert totals.answered >= 200 and totals.busy_rate < 0.05, totals.n
    integrity = json.loads(rd.integrity.read_text())
    assert integrity["ok"] is True, integrity
    assert integrity["source"] == "http" and integrity["acks"]["acknowledged"] > 50
    gate = json.loads(rd.gate.read_text())
    assert gate["passed"] is True
    assert rd.report_html.is_file() and "foreign-wallet" in rd.report_html.read_text()
    assert foreign_wallet.served("transfers") >= integrity["acks"]["acknowledged"]


def test_without_the_allow_entry_nothing_is_sent(
    foreign_wallet: ForeignWallet, tmp_path: Path
) -> None:
    before = foreign_wallet.served("login")
    profile, system, _ = _files(tmp_path, foreign_wallet, allow=False)
    code, output, run_dir = _run(str(profile), "--system", str(system), cwd=tmp_path)
    address = urlsplit(foreign_wallet.url).hostname
    assert code == 2, output
    assert f"{address} is not on loopback and not allowed" in output
    assert f"--allow {address}" in output, "the refusal says how to allow it"
    assert run_dir is None, "refused before a run directory was made"
    assert foreign_wallet.served("login") == before == 0
    # the --target shortcut takes the same rule
    code, output, _ = _run(str(profile), "--target", foreign_wallet.url, cwd=tmp_path)
    assert code == 2 and "not on loopback and not allowed" in output


def test_a_wrong_ca_makes_every_answer_a_tls_failure(
    foreign_wallet: ForeignWallet, tmp_path: Path
) -> None:
    other = issue(trustme.CA(), tmp_path / "other", "unused.test").ca
    profile, system, _ = _files(tmp_path, foreign_wallet, ca=other)
    before = foreign_wallet.served("login")
    _, output, run_dir = _run(str(profile), "--system", str(system), cwd=tmp_path)
    assert run_dir is not None, output
    totals = RunDir(run_dir).read_timeline().totals("request")
    assert totals.answered > 0 and totals.count("busy") == totals.answered, totals.n
    assert set(totals.busy) == {"connection"}, totals.busy
    assert totals.detail.get("tls") == totals.answered, totals.detail
    assert "Traceback" not in output
    assert foreign_wallet.served("login") == before, "no request got through"
