"""The profile's ``integrity:`` section and the ``money:`` mark of HTTP steps: read into the model,
and every mistake reported at file:line:column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from loadkit.profile.model import HttpJourney, Money, load_profile
from loadkit.spec import SpecError

HEAD = """
stages:
  - {name: a, duration: 10s, rate: 5}
journeys:
  - name: pay
    http:
      - method: POST
        path: /pay
        headers:
          Idempotency-Key: "{step.idempotency_key}"
        json: {amount: 100}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_money_steps_and_an_sql_check_are_read(tmp_path: Path) -> None:
    text = (
        HEAD
        + """        money: {id_field: payment.id, amount: amount}
integrity:
  sql:
    dsn_env: SHOP_DSN
    query: SELECT idem_key, count(*) FROM payments WHERE created_at >= $1 GROUP BY 1
"""
    )
    profile = load_profile(_write(tmp_path, text))
    journey = profile.journeys[0]
    assert isinstance(journey, HttpJourney)
    assert journey.steps[0].money == Money("Idempotency-Key", "payment.id", "amount")
    assert profile.integrity is not None and profile.integrity.sql is not None
    assert profile.integrity.sql.dsn_env == "SHOP_DSN" and profile.integrity.http is None


def test_money_true_and_an_http_check(tmp_path: Path) -> None:
    text = HEAD + "        money: true\nintegrity:\n  http: {url: 'http://127.0.0.1:9/applied'}\n"
    profile = load_profile(_write(tmp_path, text))
    journey = profile.journeys[0]
    assert isinstance(journey, HttpJourney) and journey.steps[0].money == Money()
    assert profile.integrity is not None and profile.integrity.http is not None
    assert profile.integrity.http.url == "http://127.0.0.1:9/applied"


CASES = {
    "a money step that sends no idempotency key": (
        HEAD.replace('Idempotency-Key: "{step.idempotency_key}"', "X-Trace: t")
        + "        money: true\n",
        [
            "11:16: journeys[0].http[0].money: a money step must send its idempotency key: add "
            "the header 'Idempotency-Key: {step.idempotency_key}' to 'headers' (or name the "
            "header it uses in money.idempotency_header)"
        ],
    ),
    "an unknown key in a money block": (
        HEAD + "        money: {idempotency_heder: X-Key}\n",
        [
            "11:17: journeys[0].http[0].money.idempotency_heder: unknown key "
            "'idempotency_heder'; did you mean 'idempotency_header'?"
        ],
    ),
    "both sql and http": (
        HEAD
        + "integrity:\n  http: {url: 'http://127.0.0.1:9/a'}\n"
        + "  sql: {dsn: 'postgresql://u@127.0.0.1/db', query: 'SELECT k, 1 FROM t'}\n",
        ["12:3: integrity: give exactly one of 'sql' (a query) or 'http' (a URL)"],
    ),
    "neither dsn nor dsn_env, and not a query": (
        HEAD + "integrity:\n  sql:\n    query: DELETE FROM payments\n",
        [
            "13:5: integrity.sql: give exactly one of 'dsn' or 'dsn_env' (the variable holding "
            "the DSN)",
            "13:12: integrity.sql.query: expected a SELECT query returning (key, count) rows",
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_mistakes_name_the_place(tmp_path: Path, text: str, expected: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        load_profile(_write(tmp_path, text))
    got = [f"{p.line}:{p.column}: {p.field}: {p.message}" for p in caught.value.problems]
    assert got == expected
