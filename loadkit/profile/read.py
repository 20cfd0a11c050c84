"""Validation of a whole load profile file into a :class:`~loadkit.profile.model.Profile`.

The top level, the virtual users, the client's behaviour and its network classes are checked here;
stages and journeys have their own modules. Every problem in the file is collected before one
:class:`~loadkit.spec.errors.SpecError` is raised::

    profile = load_profile("profiles/smoke.yaml")
    profile.duration_s  # 45.0
"""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from urllib.parse import urlsplit

from loadkit.profile.data import DataFiles
from loadkit.profile.model import (
    ClientBehaviour,
    Failover,
    HttpIntegrityCheck,
    IntegrityCheck,
    LoadModel,
    NetworkClass,
    Profile,
    Retries,
    SqlIntegrityCheck,
    UserPool,
)
from loadkit.profile.read_data import read_data
from loadkit.profile.read_journeys import NAME_PATTERN, read_journeys
from loadkit.profile.read_stages import read_stages
from loadkit.spec.errors import Invalid
from loadkit.spec.loader import Document, Map, Node, Seq, load_document
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.values import (
    describe,
    format_duration,
    format_rate,
    parse_bandwidth,
    parse_bool,
    parse_duration,
    parse_int,
    parse_number,
    parse_percent,
    parse_text,
)

PROFILE_KEYS = Keys(
    required=("stages", "journeys"),
    optional=(
        "name",
        "description",
        "time_scale",
        "seed",
        "users",
        "client",
        "network",
        "integrity",
        "data",
    ),
)
INTEGRITY_KEYS = Keys(optional=("sql", "http"))
INTEGRITY_SQL_KEYS = Keys(required=("query",), optional=("dsn", "dsn_env"))
INTEGRITY_HTTP_KEYS = Keys(required=("url",), optional=("headers",))
USER_KEYS = Keys(optional=("accounts", "first_id", "max_in_flight"))
CLIENT_KEYS = Keys(optional=("timeout", "think_time", "retries", "failover"))
FAILOVER_KEYS = Keys(optional=("eject",))
RETRY_KEYS = Keys(
    optional=("attempts", "backoff", "max_backoff", "honour_retry_after", "reuse_idempotency_key")
)
NETWORK_KEYS = Keys(required=("name", "weight"), optional=("latency", "jitter", "bandwidth"))
MAX_ATTEMPTS = 10
#: Toxiproxy's bandwidth toxic counts whole KB/s, so 1 KB/s (8 kbps) is the least it can do
MIN_BANDWIDTH_KBPS = 8.0


def load_profile(path: str | Path, *, data: DataFiles = True) -> Profile:
    """Read, validate and build the profile in ``path``; raises ``SpecError`` with every problem.
    ``data`` says where the CSV files of ``data:`` come from (see :data:`DataFiles`)."""
    return read_profile(load_document(path), data=data)


def summary(profile: Profile, file: str | Path) -> str:
    """The one-line summary ``loadkit validate`` prints for a valid profile."""
    peak = max((stage.peak for stage in profile.stages), default=0.0)
    unit = format_rate(peak) if profile.model is LoadModel.OPEN else f"{peak:g} users"
    length = format_duration(profile.profile_duration_s)
    if profile.time_scale != 1:
        length += (
            f" (runs {format_duration(profile.duration_s)}, time_scale {profile.time_scale:g})"
        )
    return (
        f"{file}: profile '{profile.name}': {_count(profile.stages, 'stage')}, {length}, "
        f"peak {unit}, {_count(profile.journeys, 'journey')}, "
        f"{_count(profile.network, 'network class', 'network classes')}"
    )


def _count(items: Sized, noun: str, plural: str = "") -> str:
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'}"


def read_profile(doc: Document, *, data: DataFiles = True) -> Profile:
    """Build the profile of an already loaded document (see :func:`load_profile`); data files
    are relative to the document's folder."""
    ctx = Context(doc.file, doc.problems)
    fields = Fields(ctx, doc.root, PROFILE_KEYS, "profile")
    name = fields.get("name", parse_text, Path(doc.file).stem)
    description = fields.get("description", parse_text, "")
    time_scale = fields.get("time_scale", lambda v: parse_number(v, above=0), 1.0)
    seed = fields.get("seed", parse_int, 0)
    users = fields.sub("users", lambda n: _users(ctx, n)) or UserPool()
    client = fields.sub("client", lambda n: _client(ctx, n)) or ClientBehaviour()
    network = fields.sub("network", lambda n: _network(ctx, n)) or ()
    integrity = fields.sub("integrity", lambda n: read_integrity(ctx, n))
    base = Path(doc.file).parent
    sources, columns = fields.sub(
        "data",
        lambda n: read_data(ctx, n, base=base, accounts=users.accounts, files=data),
    ) or ((), {})
    journeys_node = fields.child("journeys")
    journeys = read_journeys(ctx, journeys_node, columns) if journeys_node is not None else ()
    complete = isinstance(journeys_node, Seq) and len(journeys) == len(journeys_node.items)
    names = [j.name for j in journeys] if complete and all(j.name for j in journeys) else None
    stages_node = fields.child("stages")
    stages, model = (
        read_stages(
            ctx, stages_node, journeys=names, time_scale=time_scale, accounts=users.accounts
        )
        if stages_node is not None
        else ((), LoadModel.OPEN)
    )
    ctx.raise_if_any()
    return Profile(
        name=name,
        stages=stages,
        journeys=journeys,
        model=model,
        description=description,
        client=client,
        network=network,
        time_scale=time_scale,
        users=users,
        seed=seed,
        source=doc.file,
        integrity=integrity,
        data=sources,
    )


def read_integrity(ctx: Context, node: Node) -> IntegrityCheck:
    """``integrity: {sql: {query, dsn | dsn_env}}`` or ``integrity: {http: {url, headers}}``."""
    fields = Fields(ctx, node, INTEGRITY_KEYS, "integrity block")
    sql = fields.sub("sql", lambda n: _integrity_sql(ctx, n))
    http = fields.sub("http", lambda n: _integrity_http(ctx, n))
    if fields.ok and (sql is None) == (http is None):
        ctx.error(node, "give exactly one of 'sql' (a query) or 'http' (a URL)")
    return IntegrityCheck(sql=sql, http=http)


def _integrity_sql(ctx: Context, node: Node) -> SqlIntegrityCheck:
    fields = Fields(ctx, node, INTEGRITY_SQL_KEYS, "integrity.sql block")
    query = fields.get("query", parse_text, "")
    dsn = fields.get("dsn", _dsn, None)
    dsn_env = fields.get(
        "dsn_env", lambda v: parse_text(v, pattern=r"[A-Za-z_][A-Za-z0-9_]*", hint=_ENV_HINT), None
    )
    if fields.ok and (dsn is None) == (dsn_env is None):
        ctx.error(node, "give exactly one of 'dsn' or 'dsn_env' (the variable holding the DSN)")
    if query and not query.lstrip().lower().startswith(("select", "with")):
        fields.error("query", "expected a SELECT query returning (key, count) rows")
    return SqlIntegrityCheck(query=query, dsn=dsn, dsn_env=dsn_env)


_ENV_HINT = "an environment variable name like SHOP_DSN"


def _dsn(value: object) -> str:
    text = parse_text(value)
    if not text.startswith(("postgresql://", "postgres://")):
        raise Invalid(
            f"expected a PostgreSQL DSN like postgresql://user@127.0.0.1/db, got {text!r}"
        )
    return text  # where it may point is checked when a run starts (loadkit.safety)


def _url(value: object) -> str:
    text = parse_text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected a URL like http://127.0.0.1:8080/applied, got {text!r}")
    return text  # where it may point is checked when a run starts (loadkit.safety)


def _integrity_http(ctx: Context, node: Node) -> HttpIntegrityCheck:
    fields = Fields(ctx, node, INTEGRITY_HTTP_KEYS, "integrity.http block")
    url = fields.get("url", _url, "")
    empty: dict[str, str] = {}
    headers = fields.get("headers", _string_map, empty)
    return HttpIntegrityCheck(url=url, headers=headers)


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()
    ):
        raise Invalid("expected a mapping of header names to text values")
    return {k: str(v) for k, v in value.items()}


def _users(ctx: Context, node: Node) -> UserPool:
    fields = Fields(ctx, node, USER_KEYS, "users block")
    return UserPool(
        accounts=fields.get("accounts", lambda v: parse_int(v, minimum=1), 1000),
        first_id=fields.get("first_id", lambda v: parse_int(v, minimum=0), 1),
        max_in_flight=fields.get("max_in_flight", lambda v: parse_int(v, minimum=1), 1000),
    )


def _client(ctx: Context, node: Node) -> ClientBehaviour:
    fields = Fields(ctx, node, CLIENT_KEYS, "client block")
    return ClientBehaviour(
        timeout_s=fields.get("timeout", parse_duration, 10.0),
        think_time_s=fields.get("think_time", _think_time, (0.0, 0.0)),
        retries=fields.sub("retries", lambda n: _retries(ctx, n)) or Retries(),
        failover=fields.sub("failover", lambda n: _failover(ctx, n)),
    )


def _failover(ctx: Context, node: Node) -> Failover | None:
    """``true`` (eject for 5 s), ``false``, or ``{eject: 10s}``."""
    if isinstance(node, Map):
        fields = Fields(ctx, node, FAILOVER_KEYS, "failover block")
        eject = fields.get("eject", lambda v: parse_duration(v, allow_zero=True), 5.0)
        return Failover(eject_s=eject)
    value = node.plain()
    if not isinstance(value, bool):
        ctx.error(
            node, f"expected true, false or a mapping like {{eject: 5s}}, got {describe(value)}"
        )
        return None
    return Failover() if value else None


def _think_time(value: object) -> tuple[float, float]:
    """``2s`` (always) or ``[1s, 3s]`` (uniform between)."""
    if isinstance(value, list):
        if len(value) != 2:
            raise Invalid(
                f"expected a duration or [min, max] like [1s, 3s], got {len(value)} items"
            )
        low, high = (parse_duration(v, allow_zero=True) for v in value)
        if high < low:
            raise Invalid(f"the maximum ({value[1]}) is below the minimum ({value[0]})")
        return low, high
    fixed = parse_duration(value, allow_zero=True)
    return fixed, fixed


def _retries(ctx: Context, node: Node) -> Retries:
    fields = Fields(ctx, node, RETRY_KEYS, "retries block")
    attempts = fields.get("attempts", lambda v: parse_int(v, minimum=1, maximum=MAX_ATTEMPTS), 1)
    backoff = fields.get("backoff", lambda v: parse_duration(v, allow_zero=True), 0.1)
    max_backoff = fields.get("max_backoff", parse_duration, max(5.0, backoff))
    if max_backoff < backoff:
        fields.error("max_backoff", f"must not be below 'backoff' ({backoff:g}s)")
    return Retries(
        attempts=attempts,
        backoff_s=backoff,
        max_backoff_s=max_backoff,
        honour_retry_after=fields.get("honour_retry_after", parse_bool, True),
        reuse_idempotency_key=fields.get("reuse_idempotency_key", parse_bool, True),
    )


def _network(ctx: Context, node: Node) -> tuple[NetworkClass, ...]:
    """Network classes; weights are all percents adding up to 100%, or all relative numbers."""
    classes: list[NetworkClass] = []
    forms: set[bool] = set()  # True: written as a percent
    names: dict[str, str] = {}
    for item in items_of(ctx, node, "network classes", "network class"):
        fields = Fields(ctx, item, NETWORK_KEYS, "network class")
        if not fields.ok:
            continue
        name = fields.get("name", _class_name, "")
        if name in names:
            fields.error("name", f"duplicate network class '{name}' (also {names[name]})")
        names.setdefault(name, item.path)
        unknown: tuple[bool | None, float] = (None, 1.0)
        is_percent, weight = fields.get("weight", _network_weight, unknown)
        if is_percent is not None:
            forms.add(is_percent)
        latency = fields.get("latency", lambda v: parse_duration(v, allow_zero=True), 0.0)
        jitter = fields.get("jitter", lambda v: parse_duration(v, allow_zero=True), 0.0)
        if jitter > latency:
            fields.error("jitter", f"must not exceed 'latency' ({latency * 1000:g}ms)")
        bandwidth = fields.get("bandwidth", parse_bandwidth, None)
        if bandwidth is not None and bandwidth < MIN_BANDWIDTH_KBPS:
            least = f"{MIN_BANDWIDTH_KBPS:g}kbps"
            fields.error(
                "bandwidth", f"Toxiproxy counts bandwidth in whole KB/s: use {least} or more"
            )
        classes.append(NetworkClass(name, weight, latency * 1000, jitter * 1000, bandwidth))
    total = sum(c.weight for c in classes)
    if forms == {True, False}:
        ctx.error(node, "give every class's weight as a percent, or every one as a number")
    elif forms == {True} and abs(total - 1.0) > 1e-9 and isinstance(node, Seq):
        ctx.error(node, f"network class weights add up to {total * 100:g}%, not 100%")
    if not classes or total <= 0:
        return ()
    return tuple(
        NetworkClass(c.name, c.weight / total, c.latency_ms, c.jitter_ms, c.bandwidth_kbps)
        for c in classes
    )


def _class_name(value: object) -> str:
    return parse_text(
        value, pattern=NAME_PATTERN, hint="a name of letters, digits, '_', '.' or '-'"
    )


def _network_weight(value: object) -> tuple[bool | None, float]:
    """``(True, fraction)`` for ``70%``, ``(False, number)`` for a relative weight like ``7``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        fraction = parse_percent(value)
        if fraction <= 0:
            raise Invalid(f"expected a weight above 0%, got {describe(value)}")
        return True, fraction
    return False, parse_number(value, above=0)
