"""Validation of a profile's ``journeys:`` list into :data:`~loadkit.profile.model.Journey` values.

Three kinds, one per entry: ``wallet: <journey>`` (the reference wallet's own), ``http: [steps]``
(declarative requests against any service) and ``locust: module:Class`` (a user-written Locust
class, checked for form only: importing it would start gevent in the orchestrator)::

    journeys = read_journeys(ctx, doc.root.items["journeys"])
    [j.name for j in journeys]  # ['pay', 'checkout', 'custom']
"""

from __future__ import annotations

import re
from collections.abc import Callable

from loadkit.profile.model import (
    EXPECTABLE,
    AmountRange,
    Expect,
    HttpJourney,
    HttpMethod,
    HttpStep,
    Journey,
    LocustClassJourney,
    Money,
    Outcome,
    WalletJourney,
    WalletJourneyKind,
)
from loadkit.spec.errors import Invalid
from loadkit.spec.loader import Map, Node, Scalar, Seq
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.template import DataColumns, Template, parse_template
from loadkit.spec.values import (
    describe,
    parse_bool,
    parse_choice,
    parse_int,
    parse_number,
    parse_text,
)

KINDS = ("wallet", "http", "locust")  # the key that names a journey's kind; READERS below
_COMMON = ("name", "weight", "tags")
#: which wallet journeys take which parameters
WALLET_PARAMS: dict[str, tuple[str, ...]] = {
    "amount": ("pay_merchant", "p2p_transfer", "topup"),
    "otp": ("pay_merchant", "p2p_transfer"),
    "limit": ("history",),
}
STEP_KEYS = Keys(
    required=("path",),
    optional=("name", "method", "headers", "json", "expect", "extract", "money"),
)
MONEY_KEYS = Keys(optional=("idempotency_header", "id_field", "amount"))
WALLET_KEYS = Keys(("wallet",), (*_COMMON, *WALLET_PARAMS))
HTTP_KEYS = Keys(("http", "name"), ("weight", "tags", "target"))
LOCUST_KEYS = Keys(("locust",), _COMMON)
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_NAME_HINT = "a name of letters, digits, '_', '.' or '-'"
_CLASS_REF = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)\Z")
_HEADER = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_STATUS_CLASS = re.compile(r"([1-5])xx\Z", re.IGNORECASE)
_JSON_PATH = r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*"
_JSON_PATH_HINT = "a dotted path into the JSON answer, like 'data.token'"

#: reads a scalar node as a template, after ``check`` has turned its value into text
TemplateReader = Callable[[Node, Callable[[object], str]], Template]


def read_journeys(ctx: Context, node: Node, data: DataColumns | None = None) -> tuple[Journey, ...]:
    """A journey for every entry whose kind is clear (problems recorded for the rest, for an empty
    list and for duplicate names); its name is ``""`` when it cannot be told. ``data``: the
    profile's data sources and their columns, for ``{data.SOURCE.COLUMN}`` in templates."""
    journeys: list[Journey] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items_of(ctx, node, "journeys", "journey")):
        journey = _journey(ctx, item, data or {})
        if journey is None:
            continue
        if journey.name and journey.name in seen:
            where = f"journeys[{seen[journey.name]}]"
            message = (
                f"duplicate journey name '{journey.name}' (also {where}); give each its own 'name'"
            )
            ctx.error(item, message)
            continue
        seen[journey.name] = index
        journeys.append(journey)
    return tuple(journeys)


def _journey(ctx: Context, node: Node, data: DataColumns) -> Journey | None:
    present = [k for k in KINDS if isinstance(node, Map) and k in node.items]
    if len(present) > 1:
        assert isinstance(node, Map)
        ctx.error(node.items[present[1]], f"'{present[0]}' and '{present[1]}' cannot be combined")
        return None
    if not present:
        before = len(ctx.problems)
        Fields(ctx, node, Keys(optional=(*_COMMON, *KINDS, *WALLET_PARAMS)), "journey")
        if len(ctx.problems) == before:
            ctx.error(node, "a journey needs one of 'wallet', 'http' or 'locust'")
        return None
    # from here on a journey comes back even with problems (they are recorded, and no profile
    # is built), so that its name still counts when stages' 'mix' blocks are checked
    return READERS[present[0]](ctx, node, data)


def _http(ctx: Context, node: Node, data: DataColumns) -> HttpJourney:
    fields = Fields(ctx, node, HTTP_KEYS, "journey")
    steps = fields.sub("http", lambda n: _steps(ctx, n, data)) or ()
    target = fields.get("target", _service_name, None)
    return HttpJourney(_name(fields, ""), _weight(fields), steps, _tags(fields), target)


def _service_name(value: object) -> str:
    """A service of a system file (its names: lower case, digits, '-' and '_')."""
    return parse_text(
        value,
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        hint="the name of a service in the system file (--system), like 'shop'",
    )


def _locust(ctx: Context, node: Node, data: DataColumns) -> LocustClassJourney:
    fields = Fields(ctx, node, LOCUST_KEYS, "journey")
    module, cls = fields.get("locust", _class_ref, ("", ""))
    return LocustClassJourney(_name(fields, cls), _weight(fields), module, cls, _tags(fields))


def _wallet(ctx: Context, node: Node, data: DataColumns | None = None) -> WalletJourney:
    fields = Fields(ctx, node, WALLET_KEYS, "journey")
    kind = fields.get("wallet", _wallet_kind, None)
    if kind is not None:
        for param, kinds in WALLET_PARAMS.items():
            if fields.has(param) and kind not in kinds:
                fields.error(
                    param, f"'{param}' does not apply to '{kind}' (only to {', '.join(kinds)})"
                )
    name = _name(fields, kind.value if kind else "")
    limit = fields.get("limit", lambda v: parse_int(v, minimum=1, maximum=1000), None)
    otp = fields.get("otp", parse_bool, True)
    amount = fields.get("amount", _amount, None)
    kind = kind or WalletJourneyKind.LOGIN  # a placeholder: the problem is already recorded
    return WalletJourney(
        name, _weight(fields), kind, amount=amount, otp=otp, limit=limit, tags=_tags(fields)
    )


def _wallet_kind(value: object) -> WalletJourneyKind:
    return parse_choice(value, WalletJourneyKind, "wallet journey")


def _name(fields: Fields, default: str) -> str:
    return fields.get(
        "name", lambda v: parse_text(v, pattern=NAME_PATTERN, hint=_NAME_HINT), default
    )


def _weight(fields: Fields) -> float:
    return fields.get("weight", lambda v: parse_number(v, above=0), 1.0)


def _tags(fields: Fields) -> tuple[str, ...]:
    return fields.get("tags", _tag_list, ())


def _tag_list(value: object) -> tuple[str, ...]:
    """``[payments, smoke]``: names to pick journeys by (``--tags``, ``--exclude-tags``)."""
    if not isinstance(value, list):
        hint = f"; did you mean [{value}]?" if isinstance(value, str) else ""
        raise Invalid(
            f"expected a list of tags like [payments, smoke], got {describe(value)}{hint}"
        )
    hint = "a tag of letters, digits, '_', '.' or '-'"
    return tuple(dict.fromkeys(parse_text(v, pattern=NAME_PATTERN, hint=hint) for v in value))


def _amount(value: object) -> AmountRange:
    """A fixed amount (``8.8``) or a range (``{min: 1, max: 200}``), in CNY, to fen."""
    if isinstance(value, dict):
        if set(value) != {"min", "max"}:
            raise Invalid(f"expected an amount range like {{min: 1, max: 200}} (CNY), got {value}")
        low, high = _fen(value["min"]), _fen(value["max"])
        if high < low:
            raise Invalid(f"'max' ({value['max']}) is below 'min' ({value['min']})")
        return AmountRange(low, high)
    fen = _fen(value)
    return AmountRange(fen, fen)


def _fen(value: object) -> int:
    yuan = parse_number(value, above=0)
    fen = round(yuan * 100)
    if abs(yuan * 100 - fen) > 1e-6:
        raise Invalid(f"amounts are CNY with at most two decimals (fen), got {describe(value)}")
    return fen


def _class_ref(value: object) -> tuple[str, str]:
    text = value.strip() if isinstance(value, str) else ""
    match = _CLASS_REF.match(text)
    if match:
        return match[1], match[2]
    hint = ""
    if "." in text and ":" not in text:
        module, _, cls = text.rpartition(".")
        hint = f"; did you mean '{module}:{cls}'?"
    raise Invalid(
        f"expected 'module:Class', like 'myproject.users:CheckoutUser', got {describe(value)}{hint}"
    )


def _steps(ctx: Context, node: Node, data: DataColumns) -> tuple[HttpStep, ...]:
    steps: list[HttpStep] = []
    extracted: list[str] = []  # the vars.* that earlier steps provide
    for item in items_of(ctx, node, "HTTP steps", "step"):
        step = _step(ctx, item, _template_reader(ctx, tuple(extracted), data))
        extracted.extend(step.extract)
        steps.append(step)
    return tuple(steps)


def _step(ctx: Context, node: Node, template: TemplateReader) -> HttpStep:
    fields = Fields(ctx, node, STEP_KEYS, "HTTP step")
    method = fields.get("method", _method, HttpMethod.GET)
    path = fields.sub("path", lambda n: template(n, _path)) or Template("/", ("/",))
    return HttpStep(
        name=fields.get("name", parse_text, f"{method} {path.source}"),
        method=method,
        path=path,
        headers=fields.sub("headers", lambda n: _headers(ctx, n, template)) or {},
        json=fields.sub("json", lambda n: _json(n, template)),
        expect=fields.sub("expect", lambda n: _expect(ctx, n)) or Expect(),
        extract=fields.sub("extract", lambda n: _extract(ctx, n)) or {},
        money=_money_of(ctx, fields),
    )


def _money_of(ctx: Context, fields: Fields) -> Money | None:
    """``money: true`` or ``money: {idempotency_header, id_field, amount}``: the step moves
    money; its key is the value it sends in the idempotency header (which it must send)."""
    node = fields.child("money")
    if node is None:
        return None
    if node.plain() is True:
        money = Money()
    elif node.plain() is False:
        return None
    else:
        sub = Fields(ctx, node, MONEY_KEYS, "money block")
        money = Money(
            idempotency_header=sub.get(
                "idempotency_header",
                lambda v: parse_text(v, pattern=_HEADER, hint="an HTTP header name"),
                "Idempotency-Key",
            ),
            id_field=sub.get("id_field", _json_path, None),
            amount=sub.get("amount", _json_path, None),
        )
    headers = fields.child("headers")
    sent = headers.plain() if headers is not None else None
    names = {str(k).lower() for k in sent} if isinstance(sent, dict) else set()
    if money.idempotency_header.lower() not in names:
        ctx.error(
            node,
            f"a money step must send its idempotency key: add the header "
            f"'{money.idempotency_header}: {{step.idempotency_key}}' to 'headers' "
            "(or name the header it uses in money.idempotency_header)",
        )
    return money


def _method(value: object) -> HttpMethod:
    return parse_choice(
        value.upper() if isinstance(value, str) else value, HttpMethod, "HTTP method"
    )


def _path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        target = "the service comes from --target"
        raise Invalid(f"expected a path starting with '/' ({target}), got {describe(value)}")
    return value


def _template_reader(ctx: Context, extracted: tuple[str, ...], data: DataColumns) -> TemplateReader:
    """Reads one scalar as a template, checking its variables against ``extracted`` so far and
    its ``data.*`` against the profile's data sources."""

    def read(node: Node, check: Callable[[object], str]) -> Template:
        parse = lambda v: parse_template(check(v), extracted=extracted, data=data)  # noqa: E731
        return ctx.read(node, parse, Template("", ()))

    return read


def _headers(ctx: Context, node: Node, template: TemplateReader) -> dict[str, Template]:
    if not isinstance(node, Map):
        ctx.error(
            node, f"expected a mapping of header names to values, got {describe(node.plain())}"
        )
        return {}
    headers = {}
    for key, value in node.items.items():
        if not re.fullmatch(_HEADER, key):
            ctx.error_at(node.key_marks[key], value.path, f"'{key}' is not a valid header name")
        headers[key] = template(value, _header_value)
    return headers


def _header_value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"expected a header value (text), got {describe(value)}")
    return str(value)


def _json(node: Node, template: TemplateReader) -> object:
    """The body template: plain JSON values, with every string parsed as a template."""
    if isinstance(node, Map):
        return {key: _json(value, template) for key, value in node.items.items()}
    if isinstance(node, Seq):
        return [_json(item, template) for item in node.items]
    assert isinstance(node, Scalar)
    if isinstance(node.value, str):
        parsed = template(node, str)
        return parsed.source if not parsed.variables else parsed
    if node.value is not None and not isinstance(node.value, bool | int | float):
        return template(node, lambda v: _not_json(v))
    return node.value


def _not_json(value: object) -> str:
    raise Invalid(f"JSON has no such value: {describe(value)}; quote it to send text")


def _expect(ctx: Context, node: Node) -> Expect:
    fields = Fields(ctx, node, Keys(optional=tuple(o.value for o in EXPECTABLE)), "expect block")
    exact: dict[int, Outcome] = {}
    classes: dict[int, Outcome] = {}
    for key, child in fields.items.items():  # in file order: the later listing is the mistake
        if key not in {o.value for o in EXPECTABLE}:
            continue
        outcome = Outcome(key)
        entries = child.items if isinstance(child, Seq) else (child,)
        for entry in entries:
            status = ctx.read(entry, _status, None)
            if status is None:
                continue
            code, is_class = status
            table = classes if is_class else exact
            if code in table:
                shown = f"{code}xx" if is_class else str(code)
                ctx.error(entry, f"status {shown} is already listed under '{table[code]}'")
            table[code] = outcome
    return Expect(exact, classes)


def _status(value: object) -> tuple[int, bool]:
    """``(code, False)`` for a status like ``404``, ``(4, True)`` for a class like ``4xx``."""
    if isinstance(value, str) and (match := _STATUS_CLASS.match(value.strip())):
        return int(match[1]), True
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value, False
    raise Invalid(
        f"expected an HTTP status from 100 to 599 or a class like '4xx', got {describe(value)}"
    )


def _json_path(value: object) -> str:
    return parse_text(value, pattern=_JSON_PATH, hint=_JSON_PATH_HINT)


def _extract(ctx: Context, node: Node) -> dict[str, str]:
    if not isinstance(node, Map):
        ctx.error(
            node,
            f"expected a mapping of variable names to JSON paths, got {describe(node.plain())}",
        )
        return {}
    extract = {}
    for key, value in node.items.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            ctx.error_at(
                node.key_marks[key],
                value.path,
                f"'{key}' is not a variable name (letters, digits, '_')",
            )
        extract[key] = ctx.read(value, _json_path, "")
    return extract


#: the journey kinds, by the key that names them in a profile → their reader; the Locust side
#: builds each kind's runner from ``loadkit.load.journeys.RUNNERS``
READERS: dict[str, Callable[[Context, Node, DataColumns], Journey]] = {
    "wallet": _wallet,
    "http": _http,
    "locust": _locust,
}
assert tuple(READERS) == KINDS
