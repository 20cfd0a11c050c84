"""``loadkit init``: a first profile, SLO file and chaos scenario for a target, ready to run.

For a service of your own (``target`` a URL) the profile sends declarative HTTP journeys to it;
for the reference wallet (``target`` ``None``) it uses the wallet's own journeys. Every file is
commented for a QA engineer who has not read the docs yet, names its JSON Schema in its first
line (copies go to ``schemas/`` beside them, so editors complete and check the files), and is
validated before :func:`scaffold` returns. Existing files are never overwritten unless
``force``::

    result = scaffold("http://127.0.0.1:8080", Path("loadtest"))
    [p.name for p in result.files]  # ['profile.yaml', 'slo.yaml', 'chaos.yaml', 'accounts.csv', …]
    print("\\n".join(result.next_steps))
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from loadkit.errors import ConfigError
from loadkit.spec.modeline import modeline, schema_file

#: what :func:`scaffold` writes, relative to its folder
PROFILE = Path("profile.yaml")
SLO = Path("slo.yaml")
SCENARIO = Path("chaos.yaml")
ACCOUNTS = Path("data/accounts.csv")
SCHEMAS = Path("schemas")
#: the sample data file's rows: one per virtual user of the scaffolded profile
USERS = 100


@dataclass(frozen=True)
class Scaffold:
    """What :func:`scaffold` wrote, ``loadkit validate``'s line on each spec file, and the
    commands to run next."""

    folder: Path
    files: tuple[Path, ...]
    summaries: tuple[str, ...]
    next_steps: tuple[str, ...]


def scaffold(
    target: str | None,
    folder: Path = Path("."),
    *,
    name: str | None = None,
    force: bool = False,
) -> Scaffold:
    """Write a profile, an SLO file and a chaos scenario for ``target`` (a service's base URL,
    or ``None`` for the reference wallet) into ``folder``; :class:`ConfigError` for a bad URL or
    name, or when a file exists and ``force`` is false (nothing is written then)."""
    url = _check_url(target) if target is not None else None
    name = _check_name(name or (_name_of(url) if url else "wallet"))
    texts: dict[Path, str] = {
        PROFILE: _http_profile(url, name) if url else _wallet_profile(name),
        SLO: _slo(name, wallet=url is None),
        SCENARIO: _scenario(name, url),
    }
    if url:
        texts[ACCOUNTS] = "username,password\n" + "".join(
            f"user{i:03d},secret-{i:03d}\n" for i in range(1, USERS + 1)
        )
    kinds = {PROFILE: "profile", SLO: "slo", SCENARIO: "scenario"}
    schemas = {SCHEMAS / schema_file(kind).name: schema_file(kind) for kind in kinds.values()}
    planned = [folder / p for p in [*texts, *schemas]]
    existing = [p for p in planned if p.exists()]
    if existing and not force:
        listing = ", ".join(str(p) for p in existing)
        raise ConfigError(f"init: {listing} already exist(s); choose another folder or add --force")
    for relative, text in texts.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative in kinds:
            schema = folder / SCHEMAS / schema_file(kinds[relative]).name
            text = modeline(kinds[relative], path, schema) + "\n" + text
        path.write_text(text, encoding="utf-8")
    for relative, source in schemas.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / relative)
    from loadkit.run.validate import validate_files  # what `loadkit validate` checks

    summaries = validate_files([folder / p for p in kinds])
    return Scaffold(folder, tuple(planned), tuple(summaries), _next_steps(folder, url))


def _check_url(target: str) -> str:
    parts = urlsplit(target.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"init: expected a URL like http://127.0.0.1:8080, got {target!r}")
    return target.strip()


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"init: --name: expected letters, digits, '_', '.' or '-', got {name!r}")
    return name


def _name_of(url: str) -> str:
    host = urlsplit(url).hostname or "service"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", host).strip("-.") or "service"


def _base_of(url: str) -> str:
    """What ``--target`` takes: the scheme and the authority (the path goes to the journey)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path_of(url: str) -> str:
    """The URL's path (and query) as a template: ``/`` when it has none, braces doubled."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return path.replace("{", "{{").replace("}", "}}")


def _pad(text: str, width: int = 17) -> str:
    """Spaces that line a trailing comment up with the ones around it."""
    return " " * max(1, width - len(text))


def _next_steps(folder: Path, url: str | None) -> tuple[str, ...]:
    def at(path: Path) -> str:
        return str(folder / path) if str(folder) != "." else str(path)

    check = f"loadkit validate {at(PROFILE)} {at(SLO)} {at(SCENARIO)}"
    if url is None:
        run = f"loadkit run {at(PROFILE)} --chaos {at(SCENARIO)} --slo {at(SLO)}"
        return (check, run)
    run = f"loadkit run {at(PROFILE)} --target {_base_of(url)} --slo {at(SLO)}"
    rehearse = f"loadkit stack up && loadkit chaos run {at(SCENARIO)} --profile {at(PROFILE)}"
    return (check, run, rehearse)


_STAGES = """\
# Stages run one after another; each is a phase in reports and SLOs. Durations need a unit
# (30s, 2m, 1h30m); rates are arrivals per second (20, 20/s and 1200/min say the same). A
# profile that names 'users' instead of 'rate' runs that many looping users (a closed model).
stages:
  - name: warm-up
    duration: 30s
    rate: 2/s
  - name: ramp
    duration: 30s
    curve: linear          # from where warm-up ended (2/s) up to 20/s
    rate: 20/s
  - name: hold
    duration: 2m
    rate: 20/s
    variation: 10%         # ±10% each second, drawn from the seed: the same every run
  - name: spike
    duration: 20s
    rate: 60/s             # three times the hold rate, at once
  - name: cool-down
    duration: 30s
    rate: 5/s
"""

_CLIENT = """\
# The client app: give up after 5 s; retry a busy answer once after 200 ms (Retry-After is
# honoured, and a retry sends the same idempotency key, so it never pays twice).
client:
  timeout: 5s
  retries:
    attempts: 2
    backoff: 200ms
"""


def _header(what: str, name: str, run: str) -> str:
    return f"""\
# {name} — {what} (scaffolded by `loadkit init`; edit it freely).
#
# Run it:    {run}
# Check it:  loadkit validate profile.yaml   (every mistake with its line; nothing is started)
#
# docs/profiles.md explains every key. Editors with the YAML language server (VS Code: the
# "YAML" extension) complete and check this file through the schema named on the first line.
"""


def _http_profile(url: str, name: str) -> str:
    base = _base_of(url)
    run = f"loadkit run profile.yaml --target {base} --slo slo.yaml"
    return f"""\
{_header(f"load on {base}", name, run)}
name: {name}
description: a first load test of {base} — warm up, ramp to 20/s, hold, a 3× spike
seed: 1                    # the same seed gives the same load, journey picks and random values

users:
  accounts: {USERS}            # virtual users: {{user.index}} 0…{USERS - 1}, {{user.id}} 1…{USERS}
  max_in_flight: 200       # requests open at once, at most; arrivals beyond are counted "unsent"

{_STAGES}
# What an arriving user does: a journey picked by weight, whose steps (HTTP requests) run in
# order. Statuses: 2xx/3xx ok; 400/401/402/403/404/409/422 rejected (a correct refusal);
# 429 and 5xx busy, what users see as "system busy". 'expect' overrides that per step.
journeys:
  - name: home
    weight: 1
    tags: [smoke]          # run a subset with: loadkit run … --tags smoke
    http:
      - path: {_path_of(url)}{_pad(_path_of(url))}# the host comes from --target
        expect:
          ok: [200]
  # An action of several steps, with test data, random values and a money movement. Remove the
  # '# ' in front of these lines and of the 'data:' block below, and adapt paths and fields:
  #
  # - name: pay
  #   weight: 3
  #   tags: [payments]
  #   http:
  #     - name: login
  #       method: POST
  #       path: /api/login
  #       json: {{username: "{{data.accounts.username}}", password: "{{data.accounts.password}}"}}
  #       extract: {{token: data.token}}        # {{vars.token}} = the answer's data.token
  #     - name: pay
  #       method: POST
  #       path: /api/payments
  #       headers:
  #         Authorization: "Bearer {{vars.token}}"
  #         Idempotency-Key: "{{step.idempotency_key}}"
  #       json:
  #         amount: "{{random.int 100..5000}}"          # a whole number, both ends included
  #         method: "{{random.choice [card, balance]}}"
  #       expect: {{ok: [200, 201], rejected: [402, 409]}}
  #       money: {{amount: amount}}                    # logged for the integrity check

# Test data: CSV files whose header names the columns, used as {{data.SOURCE.COLUMN}}. In the
# default mode, per-user, virtual user i takes row i (so the file needs {USERS} rows); 'mode:
# shared-random' or 'shared-sequential' share the rows among all users instead.
# data:
#   accounts: data/accounts.csv

{_CLIENT}"""


def _wallet_profile(name: str) -> str:
    run = "loadkit run profile.yaml --chaos chaos.yaml --slo slo.yaml"
    return f"""\
{_header("load on the reference wallet that loadkit starts itself", name, run)}
name: {name}
description: a first surge on the reference wallet — warm up, ramp to 20/s, hold, a 3× spike
seed: 1                    # the same seed gives the same load and the same journey picks

users:
  accounts: {USERS}            # distinct wallet users the arrivals are spread over
  max_in_flight: 200       # requests open at once, at most; arrivals beyond are counted "unsent"

{_STAGES}
# What an arriving user does, picked by weight (30 is three times 10). These are the reference
# wallet's own journeys; each logs in first. 'tags' pick a subset: loadkit run … --tags payments
journeys:
  - wallet: balance
    weight: 30
    tags: [reads]
  - wallet: pay_merchant
    weight: 25
    amount: {{min: 1, max: 200}}     # CNY, drawn uniformly
    tags: [payments]
  - wallet: p2p_transfer
    weight: 20
    amount: {{min: 1, max: 100}}
    tags: [payments]
  - wallet: topup
    weight: 10
    amount: 100
    tags: [payments]
  - wallet: history
    weight: 15
    limit: 20                      # page size
    tags: [reads]

{_CLIENT}"""


def _slo(name: str, *, wallet: bool) -> str:
    integrity = (
        "  - integrity: clean         # no acknowledged payment lost or applied twice\n"
        if wallet
        else "  # - integrity: clean       # once the profile has an 'integrity:' block\n"
    )
    return f"""\
# {name} — what a run of profile.yaml must show for the release to pass (scaffolded by
# `loadkit init`). The gate runs with the load (`--slo slo.yaml`) or afterwards:
#
#     loadkit gate reports/<run-id> --slo slo.yaml      # exit 0: pass, 1: an objective failed
#
# Each objective has one measure (max_busy_rate, max_p95, max_p99, max_recovery,
# min_achieved_rate, max_unsent, integrity) and optionally where it applies: 'phase:' (a stage
# of the profile) or 'fault:' (a fault of the scenario). 'level: action' (the default) counts
# what users see after the client's retries; 'level: request' counts every HTTP request.
# docs/slo.md has the whole format.

name: {name}
description: few busy answers while holding 20/s, fast answers, recovery within 30 s

objectives:
  - max_busy_rate: 1%
    phase: hold
    name: busy while holding 20/s
  - max_busy_rate: 5%
    phase: spike              # a short surge may cost a little
  - max_p95: 500ms            # what users waited, from the moment they arrived
    phase: hold
  - max_p99: 2s
  - max_recovery: 30s         # after every fault of a scenario (nothing to check without one)
  - min_achieved_rate: 95%    # of the offered rate, while holding
    phase: hold
  - max_unsent: 0.1%          # the load generator kept up
{integrity}"""


def _scenario(name: str, url: str | None) -> str:
    if url is None:
        how = """\
# Run it with the load:   loadkit run profile.yaml --chaos chaos.yaml --slo slo.yaml
# Faults act on the reference stack's components: wallet instances (wallet-1, wallet-2…),
# 'postgres', and the Toxiproxy links between them (wallet-1-postgres, client-wallet-1).
"""
    else:
        how = f"""\
# Faults act on components loadkit controls: today, the reference wallet stack (wallet-1,
# 'postgres', and the Toxiproxy links wallet-1-postgres, client-wallet-1); they do not reach
# {_base_of(url)}. Rehearse the game day on the reference stack meanwhile:
#
#     loadkit stack up
#     loadkit chaos run chaos.yaml --profile profile.yaml   # light probe traffic, no load
"""
    return f"""\
# {name} — what goes wrong, and when (scaffolded by `loadkit init`).
#
{how}#
# Times are on the run clock ('90s') or after a phase of the profile starts ('hold+30s').
# Every fault is reverted when it ends, when an abort condition fires, or on Ctrl-C; see the
# catalog with `loadkit chaos list`.

name: {name}-faults
description: a slow database link while holding, then an API instance crash during the spike

steady_state:
  recover_within: 30s
  probes:
    - name: ready             # every wallet instance answers /readyz
      type: readyz
      timeout: 1s

faults:
  - name: slow-db
    type: network.latency     # every query of wallet-1 waits 200 ms more
    target: wallet-1-postgres
    latency: 200ms
    at: hold+30s
    duration: 30s
  - name: api-crash
    type: process.crash       # SIGKILL; restarted when the fault ends
    target: wallet-1
    at: spike
    duration: 10s

abort:
  - name: too-busy            # stop everything (and roll back) if users see mostly "busy"
    when: busy-rate
    above: 50%
    window: 10s
    for: 30s
"""
