"""The ``{namespace.name}`` templates of declarative HTTP journeys."""

from __future__ import annotations

import random

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
            "user.id, user.index, random.uuid, random.int, step.idempotency_key, env.*, vars.*, "
            "data.SOURCE.COLUMN, or a function like {random.int 1..500})",
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


def test_random_functions_parse_their_arguments() -> None:
    assert parse_template("{random.int 1..500}").parts == (Var("random.int", (1, 500)),)
    assert parse_template("{ random.int  -5 .. 5 }").parts == (Var("random.int", (-5, 5)),)
    assert parse_template("{random.number 0.01..99.9}").parts == (
        Var("random.number", (0.01, 99.9, 2)),
    )
    choice = parse_template("{random.choice [card, 5, 2.5, '007', \"bank, CN\"]}")
    assert choice.parts == (Var("random.choice", ("card", 5, 2.5, "007", "bank, CN")),)
    assert choice.variables == ("random.choice",)
    # without arguments, random.int is still the variable (0 to 2**31 - 1)
    assert parse_template("{random.int}").parts == (Var("random.int"),)


def test_random_functions_draw_within_their_arguments_from_the_generator() -> None:
    amount = parse_template("{random.int 1..6}")
    rng = random.Random(7)
    values = [amount.render({}, lambda var: var.draw(rng)) for _ in range(600)]
    assert set(values) == {1, 2, 3, 4, 5, 6}
    again = random.Random(7)
    assert values == [amount.render({}, lambda var: var.draw(again)) for _ in range(600)]
    price = parse_template("{random.number 0.50..1.00}")
    drawn = [price.render({}) for _ in range(200)]
    assert all(isinstance(v, float) and 0.5 <= v <= 1.0 and round(v, 2) == v for v in drawn)
    assert isinstance(parse_template("{random.number 1..9}").render({}), int)
    pick = parse_template("pay by {random.choice [card, wallet]}")
    assert {pick.render({}) for _ in range(100)} == {"pay by card", "pay by wallet"}
    # a lone function keeps its value's type in a JSON body
    body = {"amount": parse_template("{random.choice [100, 200]}")}
    assert render_json(body, {})["amount"] in (100, 200)  # type: ignore[index]


def test_data_columns_are_checked_against_the_sources() -> None:
    data = {"cards": ("number", "cvv"), "broken": None}
    template = parse_template("/pay/{data.cards.number}", data=data)
    assert template.variables == ("data.cards.number",)
    assert template.render({"data.cards.number": "4111"}) == "/pay/4111"
    parse_template("{data.broken.anything}", data=data)  # its file's own problem is reported
    parse_template("{data.any.column}")  # no sources given: the form only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{random.int 5..1}",
            "'{random.int 5..1}': the range ends (1) below where it starts (5)",
        ),
        (
            "{random.int 1.5..3}",
            "'{random.int 1.5..3}': expected whole numbers like {random.int 1..500}",
        ),
        (
            "{random.int lots}",
            "'{random.int lots}': expected whole numbers like {random.int 1..500}",
        ),
        (
            "{random.number 1..x}",
            "'{random.number 1..x}': expected numbers like {random.number 0.01..99.99}",
        ),
        (
            "{random.choice}",
            "'{random.choice}' needs its arguments, like {random.choice [a, b, c]}",
        ),
        (
            "{random.choice a, b}",
            "'{random.choice a, b}': expected a list like {random.choice [a, b, c]}",
        ),
        ("{random.choice []}", "'{random.choice []}': the list is empty; give at least one item"),
        (
            "{random.choice [a,,b]}",
            "'{random.choice [a,,b]}': an empty item in the list (two commas in a row?)",
        ),
        ("{random.choice ['a, b]}", "'{random.choice ['a, b]}': a quote (') is never closed"),
        (
            "{user.id 5}",
            "'{user.id 5}' in '{user.id 5}': user.id takes no arguments (functions: "
            "{random.int 1..500}; {random.number 0.01..99.99}; {random.choice [a, b, c]})",
        ),
        (
            "{random.uuids 5}",
            "unknown variable '{random.uuids}'; did you mean '{random.uuid}'? (expected one of: "
            "user.id, user.index, random.uuid, random.int, step.idempotency_key, env.*, vars.*, "
            "data.SOURCE.COLUMN, or a function like {random.int 1..500})",
        ),
    ],
)
def test_bad_random_functions(text: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_template(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{data.card.number}",
            "unknown data source 'card' in '{data.card.number}'; did you mean 'cards'? "
            "(data sources: cards)",
        ),
        (
            "{data.cards.numbr}",
            "data source 'cards' has no column 'numbr'; did you mean 'number'? "
            "(its columns: number, cvv)",
        ),
        (
            "{data.cards}",
            "'{data.cards}' is not a data column; write {data.SOURCE.COLUMN}, like "
            "{data.cards.number}",
        ),
    ],
)
def test_bad_data_references(text: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_template(text, data={"cards": ("number", "cvv")})
    assert caught.value.message == message
