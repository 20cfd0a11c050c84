"""Declarative HTTP journeys: the steps a profile describes, against any HTTP service.

Steps run in order; the first step whose final outcome (after retries) is not ``ok`` ends the
action with that outcome. ``extract`` pulls values out of a step's JSON answer for later steps'
``{vars.NAME}``; an ``ok`` answer without the value ends the action as busy ``server_error`` (the
service answered, but not what the journey needs: the user sees an error). Templates render per
request; a step without placeholders is built once per target URL and sent as bytes.

Rendering rules: a placeholder's value is percent-encoded in a path (``/`` too); CR and LF are
dropped from header values; in a JSON body a string that is exactly one placeholder keeps its
value's type. ``{step.idempotency_key}`` is one key per step of an action, replaced on a retry
only when ``reuse_idempotency_key`` is false; ``{env.NAME}`` must be set when the run starts.
A step marked ``money:`` is a money movement: its idempotency key goes to ``acks.bin`` as
``sent`` before the request leaves, then with its final view (acknowledged, refused, unknown),
for the integrity check::

    journey = HttpJourneyRunner(spec, setup)
    journey.run(action)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import re
import uuid
from collections.abc import Iterator, Mapping
from urllib.parse import quote

import orjson

from loadkit.errors import ConfigError
from loadkit.load.client import Action, Target
from loadkit.load.journeys.base import Setup, VirtualUser
from loadkit.load.journeys.data import Feeder
from loadkit.profile.model import HttpJourney, HttpStep
from loadkit.profile.outcome import BUSY, CAUSES, OK, Cause, MoneyView, money_view
from loadkit.rundir.writer import SENT, ack_record
from loadkit.spec.template import Var, render_json, value_of

log = logging.getLogger("loadkit.load")
_SERVER_ERROR = CAUSES.index(Cause.SERVER_ERROR)
_KEY_VAR = "step.idempotency_key"
_PATH_SAFE = "-._~!$&'()*+,;=:@"


def template_env_names(spec: HttpJourney) -> set[str]:
    """The ``env.*`` variables the journey's templates use."""
    return set(spec.env_names())


class _Values(Mapping[str, object]):
    """The variables of one rendering, resolved on demand, and its random draws (``draws``: one
    value per ``random.*`` placeholder, kept so that a retry with a fresh key sends the same
    ones; ``random.uuid`` too, so that the request stays the same request)."""

    __slots__ = ("_a", "_data", "_draws", "_env", "_key", "_rng")

    def __init__(
        self,
        a: Action,
        key: str,
        env: Mapping[str, str],
        rng: random.Random,
        data: Mapping[str, tuple[Feeder, int]],
        draws: dict[int, object] | None,
    ) -> None:
        self._a, self._key, self._env, self._rng = a, key, env, rng
        self._data, self._draws = data, draws

    def __getitem__(self, name: str) -> object:
        user: VirtualUser = self._a.user
        if name == "user.id":
            return user.uid
        if name == "user.index":
            return user.index
        if name == _KEY_VAR:
            return self._key
        if name.startswith("env."):
            return self._env[name[4:]]
        if name.startswith("vars."):
            return self._a.vars[name[5:]]
        if name.startswith("data."):
            feeder, column = self._data[name]
            if feeder.per_user:
                return feeder.row(user.index)[column]
            # a shared source: one row per action, whichever steps and columns use it
            rows = self._a.vars
            row = rows.get(feeder.slot)
            if row is None:
                row = rows[feeder.slot] = feeder.row(user.index)
            assert isinstance(row, tuple)
            return row[column]
        raise KeyError(name)

    def draw(self, var: Var) -> object:
        draws = self._draws
        if draws is None:
            return var.draw(self._rng)
        value = draws.get(id(var), _UNSET)
        if value is _UNSET:
            value = draws[id(var)] = var.draw(self._rng)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_UNSET = object()


class _Step:
    def __init__(
        self, journey: str, step: HttpStep, setup: Setup, service: str | None = None
    ) -> None:
        self.step = step
        #: the system file's service it goes to (None: the run's target)
        self.service = service
        # the service's own headers, unless the step sets the same one
        own = {name.lower() for name in step.headers}
        self.defaults = "".join(
            f"{name}: {_header_value(value)}\r\n"
            for name, value in _service_headers(setup, service).items()
            if name.lower() not in own
        )
        self.ep = setup.endpoint(journey, step.name, step.method.value, step.expect)
        self.client = setup.client
        self.rng = setup.rng
        self.env = setup.env
        self.extract = dict(step.extract)
        templates = list(step.templates())
        # a money step renders per request: its key is read from what it sent
        self.static = not any(t.variables for t in templates) and step.money is None
        self.keyed = any(_KEY_VAR in t.variables for t in templates)
        self.draws = any(
            isinstance(p, Var) and p.name.startswith("random.") for t in templates for p in t.parts
        )
        self.data: dict[str, tuple[Feeder, int]] = {}
        for name in {v for t in templates for v in t.variables if v.startswith("data.")}:
            _, source, column = name.split(".", 2)
            feeder = setup.feeder(source)
            self.data[name] = (feeder, feeder.columns[column])
        self.shared_data = any(not feeder.per_user for feeder, _ in self.data.values())
        self._heads: dict[str, bytes] = {}
        self.money = step.money
        self.journey = journey
        self.recorder = setup.recorder
        self.base = setup.base
        self._sent_key = ""  # the idempotency header's value as last rendered

    def send(self, a: Action) -> None:
        user: VirtualUser = a.user
        target: Target = user.target if self.service is None else user.services[self.service]
        if self.static:
            head = self._heads.get(target.url)
            if head is None:
                path, headers, body = self.render(a, "")
                head = self.client.head(self.ep.method, target, path, headers, body)
                self._heads[target.url] = head
            self.client.call(a, self.ep, target, "", head=head)
            return
        key = str(uuid.uuid4()) if self.keyed else ""
        if self.keyed:
            a.key = key
        draws: dict[int, object] | None = {} if self.draws else None
        path, headers, body = self.render(a, key, draws)
        line = None
        if self.money is not None:
            line = self._line(a, key if self.keyed else "", headers, body)
            if line is not None:  # on disk before the key leaves
                self.recorder.sent(ack_record(line))
        if self.keyed:
            renew = self.render if draws is None else functools.partial(self.render, draws=draws)
            on_key = None if line is None else functools.partial(self._sent, line)
            self.client.call(
                a, self.ep, target, path, headers, body, renew=renew, new_key=_uuid, on_key=on_key
            )
        else:
            self.client.call(a, self.ep, target, path, headers, body)
        if line is not None:
            self._ack(a, line)

    def _line(
        self, a: Action, key: str, headers: str, body: bytes | None
    ) -> dict[str, object] | None:
        """The acknowledgement record of this send (view ``sent``); None without a key."""
        money = self.money
        assert money is not None
        key = key or _header(headers, money.idempotency_header)
        if not key:
            return None
        amount = None
        if money.amount is not None and body is not None:
            with contextlib.suppress(orjson.JSONDecodeError):
                amount = _walk(orjson.loads(body), money.amount)
        user: VirtualUser = a.user
        return {
            "t": round(a.t - self.base, 3),
            "journey": self.journey,
            "kind": self.step.name,
            "key": key,
            "account": user.uid,
            "from": None,
            "to": None,
            "amount": amount,
            "view": SENT,
            "status": None,
            "transaction_id": None,
        }

    def _sent(self, line: dict[str, object], key: str) -> None:
        """A retry's fresh key, before it leaves."""
        self.recorder.sent(ack_record({**line, "key": key}))

    def _ack(self, a: Action, line: dict[str, object]) -> None:
        """Log this money movement's final view in ``acks.bin`` (docs/integrity.md)."""
        money = self.money
        assert money is not None
        view = money_view(a.outcome)  # the step's `expect` counts: a 409 it calls busy is unknown
        transaction = None
        if money.id_field is not None and view is MoneyView.ACKNOWLEDGED:
            transaction = _walk(a.json(), money.id_field)
        if self.keyed and a.key:
            line["key"] = a.key
        line.update(view=view, status=a.status or None, transaction_id=transaction)
        self.recorder.ack(ack_record(line))
        for old in a.superseded if self.keyed else ():
            line.update(key=old, view="unknown", status=None, transaction_id=None)
            self.recorder.ack(ack_record(line))

    def render(
        self, a: Action, key: str, draws: dict[int, object] | None = None
    ) -> tuple[str, str, bytes | None]:
        """The step's path, header lines and body for action ``a`` with idempotency ``key``
        (``draws``: the random values of this send so far, reused by a re-render)."""
        values = _Values(a, key, self.env, self.rng, self.data, draws)
        draw = values.draw
        step = self.step
        path = "".join(
            p if isinstance(p, str) else quote(str(value_of(p, values, draw)), safe=_PATH_SAFE)
            for p in step.path.parts
        )
        headers = self.defaults + "".join(
            f"{name}: {_header_value(template.render(values, draw))}\r\n"
            for name, template in step.headers.items()
        )
        body = None if step.json is None else orjson.dumps(render_json(step.json, values, draw))
        return path, headers, body


def _service_headers(setup: Setup, service: str | None) -> dict[str, str]:
    """A service's default headers, ``{env.NAME}`` filled in from this process's environment
    (ConfigError naming a variable that is not set)."""
    out: dict[str, str] = {}
    for name, text in setup.config.service(service).headers.items():
        names = [v.strip()[4:] for v in re.findall(r"\{([^{}]*)\}", text)]
        if missing := [v for v in names if v not in setup.env]:
            raise ConfigError(
                f"service header {name} uses unset environment variable(s) "
                f"{', '.join(missing)}; set them where the load runs"
            )
        out[name] = re.sub(r"\{([^{}]*)\}", lambda m: setup.env[m.group(1).strip()[4:]], text)
    return out


def _header(lines: str, name: str) -> str:
    """The value of header ``name`` in rendered ``Name: value\\r\\n`` lines ("" if absent)."""
    prefix = name.lower() + ":"
    for line in lines.split("\r\n"):
        if line.lower().startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def _uuid() -> str:
    return str(uuid.uuid4())


def _header_value(value: object) -> str:
    return str(value).replace("\r", "").replace("\n", "")


class HttpJourneyRunner:
    """One declarative journey of the profile (see the module docstring)."""

    def __init__(self, spec: HttpJourney, setup: Setup) -> None:
        self.name = spec.name
        self.action_sid = setup.action_series(spec.name)
        missing = sorted(n for n in template_env_names(spec) if n not in setup.env)
        if missing:
            names = ", ".join(missing)
            raise ConfigError(f"journey '{spec.name}' uses unset environment variable(s): {names}")
        setup.config.service(spec.target)  # a service the run does not have: ConfigError
        self.steps = [_Step(spec.name, step, setup, spec.target) for step in spec.steps]
        # actions are reused: start each with no extracted values and no shared data rows
        self.fresh_vars = any(step.extract or step.shared_data for step in self.steps)
        self._warned: set[tuple[str, str]] = set()

    def run(self, a: Action) -> None:
        if self.fresh_vars:
            a.vars = {}
        for step in self.steps:
            step.send(a)
            if a.outcome != OK:
                return
            if step.extract and not self._extract(a, step):
                a.outcome, a.cause = BUSY, _SERVER_ERROR
                return

    def _extract(self, a: Action, step: _Step) -> bool:
        data = a.json()
        for name, path in step.extract.items():
            value = _walk(data, path)
            if value is None:
                if (step.step.name, name) not in self._warned:
                    self._warned.add((step.step.name, name))
                    log.warning(
                        "journey %s, step %s: the answer has no '%s' to extract as vars.%s",
                        self.name,
                        step.step.name,
                        path,
                        name,
                    )
                return False
            a.vars[name] = value
        return True


def _walk(data: object, path: str) -> object:
    """``data`` at a dotted ``path`` (dict keys, list indexes); ``None`` when absent."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data
