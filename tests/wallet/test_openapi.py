"""The published OpenAPI document, and schemathesis against the live wallet: whatever it sends,
no 5xx, no traceback in the log, answers as documented, no money moved by a refused request, and
the ledger's invariants hold afterwards."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from loadkit.stack.postgres import Postgres
from loadkit.wallet import WalletConfig, create_app
from loadkit.wallet.openapi import FILENAME, document, document_text
from tests.wallet.conftest import ADMIN, WalletProcess, login, make_wallet_db, sql

CHECKED_IN = Path(__file__).parents[2] / "loadkit" / "wallet" / FILENAME
#: admin operations that change what every later request sees (maintenance turns the whole API
#: into 503s, a policy or limit of 0.001/s into 429s, seeding a million accounts takes minutes);
#: their input checks are tested one by one in test_admin.py
STATEFUL = r"^/admin/(maintenance|policy|limits|seed)$"
#: examples per operation: the whole run stays well under a minute on a busy 2-core machine
EXAMPLES = 80
MOVEMENTS = {"/v1/topup", "/v1/payments", "/v1/transfers"}


def test_the_checked_in_document_is_current() -> None:
    """After changing the API:
    ``python -m loadkit.wallet openapi --out loadkit/wallet/openapi.json``"""
    assert CHECKED_IN.read_text(encoding="utf-8") == document_text()


def test_it_is_served_as_checked_in(client: httpx.Client) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == CHECKED_IN.read_bytes()


def test_every_route_is_documented_and_nothing_else() -> None:
    app = create_app(WalletConfig(dsn="postgresql://x@127.0.0.1:1/x", secret="s", admin_token="a"))
    routes = {
        (method.lower(), re.sub(r":int\}", "}", route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(method, path) for path, ops in document()["paths"].items() for method in ops}
    assert routes == documented


@dataclass
class FuzzTarget:
    """A wallet of its own for the fuzzer (own database, limits out of the way), the answers it
    gave to money movements, and how the ledger looked before."""

    wallet: WalletProcess
    token: str
    account_id: int
    started: float
    transactions_before: int
    answers: list[tuple[str, str, int]] = field(default_factory=list)

    #: accounts a steered movement goes to: another user, a merchant
    payee: int = 0
    merchant: int = 0

    def steer(self, case: schemathesis.Case, steer: bool) -> dict[str, str]:
        """Make more valid movements reach the ledger (negative cases are left as they are):
        when ``steer``, a payee that exists; the headers to send: a fresh key instead of the
        generated one (generated keys repeat, and a repeated key is a 409)."""
        if case.meta is None or case.meta.generation.mode.is_negative:
            return {}
        extra = {"Idempotency-Key": uuid.uuid4().hex}
        body = case.body
        if steer and isinstance(body, dict):
            for name, account in (("to_account", self.payee), ("merchant_account", self.merchant)):
                if type(body.get(name)) is int:
                    body[name] = account
        return extra

    def headers(self, path: str) -> dict[str, str]:
        if path.startswith("/admin"):
            return dict(ADMIN)
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def fuzz_target(pg: Postgres, wallet_logs: Path) -> Iterator[FuzzTarget]:
    from tests.wallet.conftest import spawn_wallet

    dsn = make_wallet_db(pg, users=20)
    w = spawn_wallet(dsn, wallet_logs, name="wallet-fuzz")
    try:
        limits = {"per_user_rate": 1_000_000, "per_user_burst": 1_000_000, "max_inflight": 1000}
        assert httpx.post(f"{w.url}/admin/limits", json=limits, headers=ADMIN).status_code == 200
        me, other = login(w.url, 1), login(w.url, 2)
        merchant = httpx.get(f"{w.url}/v1/directory/merchant00001", headers=me.headers).json()
        before = httpx.get(f"{w.url}/admin/invariants", headers=ADMIN).json()["transactions"]
        target = FuzzTarget(w, me.token, me.account_id, time.time(), before)
        target.payee, target.merchant = other.account_id, merchant["account_id"]
        yield target
    finally:
        w.stop()


@pytest.fixture(scope="module")
def wallet_api(fuzz_target: FuzzTarget) -> schemathesis.BaseSchema:
    """The document as the live wallet serves it."""
    schema = schemathesis.openapi.from_url(f"{fuzz_target.wallet.url}/openapi.json")
    # unknown query parameters are ignored, as most APIs do: not a "negative" request here
    # tokens are the fixture's (a generated Authorization would only ever be refused with 401;
    # odd tokens are tested one by one in test_validation.py)
    schema.config.generation.update(
        allow_x00=True,
        allow_extra_parameters=False,
        with_security_parameters=False,
        database="none",
    )
    return schema


#: every documented operation but the stateful admin ones
OPERATIONS = sorted(
    (path, method.upper())
    for path, ops in document()["paths"].items()
    for method in ops
    if not re.match(STATEFUL, path)
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_input_gets_a_server_error(
    path: str, method: str, wallet_api: schemathesis.BaseSchema, fuzz_target: FuzzTarget
) -> None:
    """Valid and invalid requests (schemathesis' positive and negative modes), each answered
    as documented and never with a 5xx."""
    operation = wallet_api[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    headers = fuzz_target.headers(path)

    @given(case=cases, steer=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def one(case: schemathesis.Case, steer: bool) -> None:
        sent = {**headers, **(fuzz_target.steer(case, steer) if path in MOVEMENTS else {})}
        response = case.call(headers=sent, timeout=10)
        if path in MOVEMENTS:
            key = response.request.headers.get("Idempotency-Key", "")
            fuzz_target.answers.append((path, str(key), response.status_code))
        case.validate_response(response, checks=CHECKS, headers=sent)

    one()


def test_after_fuzzing_no_traceback_no_money_moved_by_a_refusal_and_the_ledger_holds(
    fuzz_target: FuzzTarget, pg: Postgres
) -> None:
    """Runs after the fuzzer (module order): what it left behind."""
    target = fuzz_target
    log = target.wallet.log()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    metrics = httpx.get(f"{target.wallet.url}/metrics").text
    assert re.search(r"^wallet_unhandled_exceptions_total 0\.0$", metrics, re.M), metrics[:500]
    invariants = httpx.get(f"{target.wallet.url}/admin/invariants", headers=ADMIN).json()
    assert invariants["ok"], invariants
    # every transaction the fuzzer made is one it was told about with a 201
    applied = {key for path, key, status in target.answers if status == 201}
    rows = sql(
        pg,
        target.wallet.dsn,
        "SELECT coalesce(json_agg(idempotency_key), '[]') FROM transactions "
        f"WHERE account_id = {target.account_id} AND created_at >= to_timestamp({target.started})",
    )
    moved: list[str] = json.loads(rows)
    assert len(moved) == len(set(moved))  # each key applied once
    assert set(moved) <= applied, sorted(set(moved) - applied)[:5]
    assert invariants["transactions"] == target.transactions_before + len(moved)
    assert len(target.answers) >= 3 * EXAMPLES, len(target.answers)
