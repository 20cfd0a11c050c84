"""Mistakes in profile files, each reported with its file:line:column, field and a clear message.

Every case is a whole file as a QA engineer might write it, and the complete list of problems it
must produce (so a case also proves that one mistake does not cascade into several).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from loadkit.errors import ConfigError, ExitCode
from loadkit.profile.model import load_profile
from loadkit.run.validate import validate_file
from loadkit.spec import SpecError

OK_JOURNEYS = "journeys:\n  - wallet: balance\n"

CASES: dict[str, tuple[str, list[str]]] = {
    "unknown top-level key, with a close match": (
        """
        name: t
        descripton: typo
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        """,
        ["2:1: descripton: unknown key 'descripton'; did you mean 'description'?"],
    ),
    "unknown key without a close match lists the accepted keys": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        client:
          colour: red
        """,
        [
            "6:3: client.colour: unknown key 'colour' (expected one of: timeout, think_time, "
            "retries, failover)"
        ],
    ),
    "misspelt required top-level key is one problem, not two": (
        """
        stgaes:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        """,
        ["1:1: stgaes: unknown key 'stgaes'; did you mean 'stages'?"],
    ),
    "unknown stage key": (
        """
        stages:
          - name: a
            durtion: 10s
            rate: 5/s
        journeys:
          - wallet: balance
        """,
        ["3:5: stages[0].durtion: unknown key 'durtion'; did you mean 'duration'?"],
    ),
    "missing required stage key": (
        """
        stages:
          - name: a
            rate: 5/s
        journeys:
          - wallet: balance
        """,
        ["2:5: stages[0].duration: missing required key 'duration' in this stage"],
    ),
    "duration without a unit": (
        """
        stages:
          - name: a
            duration: 90
            rate: 5/s
        journeys:
          - wallet: balance
        """,
        [
            "3:15: stages[0].duration: expected a duration like '90s', '2m', '1h30m' or '500ms', "
            "got the bare number 90; did you mean '90s'?"
        ],
    ),
    "duration that is not one": (
        """
        stages:
          - name: a
            duration: a while
            rate: 5/s
        journeys:
          - wallet: balance
        """,
        [
            "3:15: stages[0].duration: expected a duration like '90s', '2m', '1h30m' or '500ms', "
            "got 'a while'"
        ],
    ),
    "negative rate": (
        """
        stages:
          - name: a
            duration: 10s
            rate: -50/s
        journeys:
          - wallet: balance
        """,
        ["4:11: stages[0].rate: a rate cannot be negative, got '-50/s'"],
    ),
    "both rate and users": (
        """
        stages:
          - name: a
            duration: 10s
            rate: 50/s
            users: 20
        journeys:
          - wallet: balance
        """,
        ["5:12: stages[0].users: set either 'rate' (arrivals per second) or 'users', not both"],
    ),
    "neither rate nor users": (
        """
        stages:
          - name: a
            duration: 10s
        journeys:
          - wallet: balance
        """,
        [
            "2:5: stages[0]: a stage needs 'rate' (arrivals per second) or 'users' "
            "(concurrent users)"
        ],
    ),
    "open and closed stages mixed": (
        """
        stages:
          - {name: a, duration: 10s, rate: 50/s}
          - {name: b, duration: 10s, users: 20}
        journeys:
          - wallet: balance
        """,
        ["3:37: stages[1].users: stage 'a' sets 'rate', so every stage must; not 'users'"],
    ),
    "unknown curve": (
        """
        stages:
          - name: a
            duration: 10s
            rate: 50/s
            curve: sinus
        journeys:
          - wallet: balance
        """,
        [
            "5:12: stages[0].curve: unknown curve 'sinus'; did you mean 'sine'? "
            "(expected one of: step, linear, exponential, sine)"
        ],
    ),
    "exponential ramp from zero": (
        """
        stages:
          - name: a
            duration: 10s
            rate: 500/s
            curve: exponential
        journeys:
          - wallet: balance
        """,
        [
            "5:12: stages[0].curve: an exponential curve needs levels above 0, got 0 to 500; "
            "set 'from' to a level above 0"
        ],
    ),
    "sine settings on a step": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5, amplitude: 20%}
        journeys:
          - wallet: balance
        """,
        ["2:50: stages[0].amplitude: 'amplitude' applies to sine curves only, not to step"],
    ),
    "variation as a bare number": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5, variation: 10}
        journeys:
          - wallet: balance
        """,
        [
            "2:50: stages[0].variation: expected a percentage like '10%' (or a fraction from 0 "
            "to 1), got 10; did you mean '10%'?"
        ],
    ),
    "duplicate stage names": (
        """
        stages:
          - {name: spike, duration: 10s, rate: 5}
          - {name: spike, duration: 10s, rate: 50}
        journeys:
          - wallet: balance
        """,
        ["3:12: stages[1].name: duplicate stage name 'spike' (also stages[0])"],
    ),
    "stage too short once time_scale compresses it": (
        """
        time_scale: 0.01
        stages:
          - {name: spike, duration: 30s, rate: 5}
        journeys:
          - wallet: balance
        """,
        [
            "3:29: stages[0].duration: lasts 0.3s of run time at time_scale 0.01; a stage must "
            "last at least 1s so the per-second recorder sees it"
        ],
    ),
    "time_scale of zero": (
        """
        time_scale: 0
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        """,
        ["1:13: time_scale: expected a number above 0, got 0"],
    ),
    "empty stages list in a repeat group, and a bad repeat count": (
        """
        stages:
          - repeat: 0
            stages: []
        journeys:
          - wallet: balance
        """,
        [
            "2:13: stages[0].repeat: expected a whole number from 1 to 1000, got 0",
            "3:13: stages[0].stages: expected at least one stage, got an empty list",
        ],
    ),
    "mix naming an unknown journey": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5, mix: {balanse: 2}}
        journeys:
          - wallet: balance
        """,
        ["2:45: stages[0].mix.balanse: unknown journey 'balanse'; did you mean 'balance'?"],
    ),
    "users over the accounts there are": (
        """
        users: {accounts: 100}
        stages:
          - {name: a, duration: 10s, users: 500}
        journeys:
          - wallet: balance
        """,
        ["3:37: stages[0].users: 500 concurrent users, but users.accounts is only 100"],
    ),
    "empty journeys": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys: []
        """,
        ["3:11: journeys: expected at least one journey, got an empty list"],
    ),
    "weight not positive": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
            weight: 0
        """,
        ["5:13: journeys[0].weight: expected a number above 0, got 0"],
    ),
    "unknown wallet journey": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: p2p_transfr
        """,
        [
            "4:13: journeys[0].wallet: unknown wallet journey 'p2p_transfr'; did you mean "
            "'p2p_transfer'? (expected one of: login, balance, pay_merchant, p2p_transfer, "
            "topup, history)"
        ],
    ),
    "parameter that does not apply to the journey": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: login
            amount: 10
        """,
        [
            "5:13: journeys[0].amount: 'amount' does not apply to 'login' (only to "
            "pay_merchant, p2p_transfer, topup)"
        ],
    ),
    "amount range upside down": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: topup
            amount: {min: 500, max: 5}
        """,
        ["5:13: journeys[0].amount: 'max' (5) is below 'min' (500)"],
    ),
    "duplicate journey names": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: p2p_transfer
          - wallet: p2p_transfer
            amount: 5000
        """,
        [
            "5:5: journeys[1]: duplicate journey name 'p2p_transfer' (also journeys[0]); give "
            "each its own 'name'"
        ],
    ),
    "two kinds in one journey": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
            locust: shop.users:Buyer
        """,
        ["5:13: journeys[0].locust: 'wallet' and 'locust' cannot be combined"],
    ),
    "nested repeat groups": (
        """
        stages:
          - repeat: 2
            stages:
              - repeat: 3
                stages: [{name: a, duration: 10s, rate: 5}]
        journeys:
          - wallet: balance
        """,
        ["4:17: stages[0].stages[0].repeat: repeat groups cannot be nested"],
    ),
    "journey of no kind": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - name: browse
            weight: 2
        """,
        ["4:5: journeys[0]: a journey needs one of 'wallet', 'http' or 'locust'"],
    ),
    "tags not a list, and a tag that is not a name": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
            tags: smoke
          - wallet: login
            tags: [smoke, "two words"]
        """,
        [
            "5:11: journeys[0].tags: expected a list of tags like [payments, smoke], got "
            "'smoke'; did you mean [smoke]?",
            "7:11: journeys[1].tags: expected a tag of letters, digits, '_', '.' or '-', got "
            "'two words'",
        ],
    ),
    "bad module:Class": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - locust: shop.users.CheckoutUser
        """,
        [
            "4:13: journeys[0].locust: expected 'module:Class', like "
            "'myproject.users:CheckoutUser', got 'shop.users.CheckoutUser'; did you mean "
            "'shop.users:CheckoutUser'?"
        ],
    ),
    "bad HTTP method": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - name: shop
            http:
              - method: PSOT
                path: /orders
        """,
        [
            "6:17: journeys[0].http[0].method: unknown HTTP method 'PSOT'; did you mean 'POST'? "
            "(expected one of: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)"
        ],
    ),
    "HTTP journey without a name, path without a slash": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - http:
              - path: orders
        """,
        [
            "4:5: journeys[0].name: missing required key 'name' in this journey",
            "5:15: journeys[0].http[0].path: expected a path starting with '/' (the service "
            "comes from --target), got 'orders'",
        ],
    ),
    "bad expect status, and one listed twice": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - name: shop
            http:
              - path: /orders
                expect:
                  ok: [200, 700]
                  busy: [429, 5xx]
                  rejected: [429]
        """,
        [
            "8:21: journeys[0].http[0].expect.ok[1]: expected an HTTP status from 100 to 599 or "
            "a class like '4xx', got 700",
            "10:22: journeys[0].http[0].expect.rejected[0]: status 429 is already listed under "
            "'busy'",
        ],
    ),
    "template with an unknown variable": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - name: shop
            http:
              - path: /users/{user.idd}/orders
        """,
        [
            "6:15: journeys[0].http[0].path: unknown variable '{user.idd}'; did you mean "
            "'{user.id}'? (expected one of: user.id, user.index, random.uuid, random.int, "
            "step.idempotency_key, env.*, vars.*, data.SOURCE.COLUMN, "
            "or a function like {random.int 1..500})"
        ],
    ),
    "template using a variable no earlier step extracts": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - name: shop
            http:
              - path: /login
                extract: {token: data.token}
              - path: /orders
                headers:
                  Authorization: "Bearer {vars.tokn}"
        """,
        [
            "10:26: journeys[0].http[1].headers.Authorization: unknown variable '{vars.tokn}'; "
            "did you mean '{vars.token}'? (an earlier step must 'extract' it; extracted so far: "
            "token)"
        ],
    ),
    "retries attempts 0 and over the limit; timeout not a duration": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        client:
          timeout: soon
          retries:
            attempts: 0
        """,
        [
            "6:12: client.timeout: expected a duration like '90s', '2m', '1h30m' or '500ms', "
            "got 'soon'",
            "8:15: client.retries.attempts: expected a whole number from 1 to 10, got 0",
        ],
    ),
    "retries over the limit, backoff above its maximum": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        client:
          retries: {attempts: 50, backoff: 2s, max_backoff: 1s, honor_retry_after: true}
        """,
        [
            "6:23: client.retries.attempts: expected a whole number from 1 to 10, got 50",
            "6:53: client.retries.max_backoff: must not be below 'backoff' (2s)",
            "6:57: client.retries.honor_retry_after: unknown key 'honor_retry_after'; did you "
            "mean 'honour_retry_after'?",
        ],
    ),
    "failover neither true/false nor a mapping": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        client:
          failover: yes please
        """,
        [
            "6:13: client.failover: expected true, false or a mapping like {eject: 5s}, "
            "got 'yes please'"
        ],
    ),
    "failover eject misspelt": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        client:
          failover: {ejct: 5s}
        """,
        ["6:14: client.failover.ejct: unknown key 'ejct'; did you mean 'eject'?"],
    ),
    "failover eject a bare number": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        client:
          failover:
            eject: 5
        """,
        [
            "7:12: client.failover.eject: expected a duration like '90s', '2m', '1h30m' or "
            "'500ms', got the bare number 5; did you mean '5s'?"
        ],
    ),
    "bad network bandwidth": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        network:
          - name: weak-4g
            weight: 100%
            bandwidth: fast
        """,
        ["8:16: network[0].bandwidth: expected a bandwidth like '512kbps' or '10mbps', got 'fast'"],
    ),
    "network weights not adding up; jitter over latency": (
        """
        stages:
          - {name: a, duration: 10s, rate: 5}
        journeys:
          - wallet: balance
        network:
          - {name: wifi, weight: 70%, latency: 20ms}
          - {name: 4g, weight: 20%, latency: 100ms, jitter: 200ms}
        """,
        [
            "6:3: network: network class weights add up to 90%, not 100%",
            "7:53: network[1].jitter: must not exceed 'latency' (100ms)",
        ],
    ),
    "duplicate YAML keys": (
        """
        stages:
          - name: a
            duration: 10s
            rate: 5
            duration: 20s
        journeys:
          - wallet: balance
        """,
        ["5:5: stages[0].duration: duplicate key 'duration' (first set on line 3)"],
    ),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_mistake_is_reported_with_place_field_and_message(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_profile(path)
    got = [f"{p.line}:{p.column}: {p.field}: {p.message}" for p in caught.value.problems]
    assert got == expected
    assert str(caught.value).splitlines() == [f"{path}:{line}" for line in expected]


def test_there_are_at_least_fifteen_distinct_mistakes() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stages:\n\t- name: a\n",
            ":2:1: a tab character; YAML is indented with spaces and needs a space after ':'",
        ),
        (
            "stages: [\njourneys: x\n",
            ":3:1: invalid YAML: expected ',' or ']', but got the end "
            "of the file (while parsing a flow sequence at line 1, column 9)",
        ),
        ("", ": the file is empty"),
        (
            "- {name: a}\n",
            ":1:1: expected a mapping of 'key: value' lines at the top level, got a list",
        ),
    ],
    ids=["tab indentation", "YAML syntax error", "empty file", "top level is a list"],
)
def test_file_that_is_not_a_yaml_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_profile(path)
    assert str(caught.value) == f"{path}{expected}"


def test_every_problem_in_a_file_is_reported_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: all-wrong
        stages:
          - {name: a, duration: 10, rate: 5}
          - {name: b, duration: 10s, rate: 5, curve: stepp}
        journeys:
          - wallet: balanse
        client:
          timeout: 0s
        time_scale: -1
        """,
    )
    with pytest.raises(SpecError) as caught:
        load_profile(path)
    lines = [p.line or 0 for p in caught.value.problems]
    assert lines == [3, 4, 6, 8, 9]
    assert lines == sorted(lines)


def test_a_spec_error_is_a_config_error_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: []\n" + OK_JOURNEYS)
    with pytest.raises(ConfigError) as caught:
        validate_file(path)
    assert caught.value.exit_code is ExitCode.USAGE
