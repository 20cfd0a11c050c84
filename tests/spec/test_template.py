"""The ``{namespace.name}`` templates of declarative HTTP journeys."""

from __future__ import annotations

import pytest

from loadkit.spec.errors import Invalid
from loadkit.spec.template import Template, Var, parse_template, render_json


def test_parse_and_render() -> None:
    template = parse_template("/accounts/{user.id}/orders/{random.uuid}")
    assert template.parts == ("/accounts/", Var("user.id"), "/orders/", Var("random.uuid"))
    assert template.variables == ("user.id", "random.uuid")
    assert template.render({"user.id": 7, "random.uuid": "u-1"}) == "/accounts/7/orders/u-1"


def test_a_lone_placeholder_keeps_its_type_and_braces_escape() -> None:
    assert parse_template("{user.index}").render({"user.index": 3}) == 3
    assert parse_template("{{literal}} {user.id}").render({"user.id": 1}) == "{literal} 1"
    assert parse_template("no variables").render({}) == "no variables"


def test_env_and_extracted_vars() -> None:
    template = parse_template("Bearer {vars.token} {env.API_KEY}", extracted=["token"])
    assert template.render({"vars.token": "t", "env.API_KEY": "k"}) == "Bearer t k"


def test_render_json_walks_the_body() -> None:
    body = {"to": parse_template("{user.id}"), "items": [parse_template("n{user.index}"), 2]}
    assert render_json(body, {"user.id": 9, "user.index": 4}) == {"to": 9, "items": ["n4", 2]}


def test_missing_values_name_the_variable() -> None:
    with pytest.raises(KeyError, match=r"env\.NOPE"):
        parse_template("{env.NOPE}").render({})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "/u/{user.idd}",
            "unknown variable '{user.idd}'; did you mean '{user.id}'? (expected one of: "
            "user.id, user.index, random.uuid, random.int, step.idempotency_key, env.*, vars.*, data.SOURCE.COLUMN, "
            "or a function like {random.int 1..500})",
        ),
        (
            "{vars.token}",
            "unknown variable '{vars.token}' (an earlier step must 'extract' it; "
            "extracted so far: none)",
        ),
        ("{user}", "'{user}' in '{user}' is not a variable; did you mean '{user.id}'?"),
        (
            "{1+1}",
            "'{1+1}' in '{1+1}' is not a variable (variables look like {user.id} or {env.NAME})",
        ),
        ("a { b", "a lone '{' in 'a { b'; write '{{' for a literal brace"),
        ("a } b", "a lone '}' in 'a } b'; write '}}' for a literal brace"),
    ],
)
def test_bad_templates(text: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_template(text)
    assert caught.value.message == message


def test_templates_are_values() -> None:
    assert parse_template("x{user.id}") == Template("x{user.id}", ("x", Var("user.id")))
