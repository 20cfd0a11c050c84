"""Historical traffic → a load profile shaped like it (``loadkit profile from-traffic``).

A traffic file is CSV with a header, one row per minute or per second (detected from the
spacing, which must be regular), optionally one row per journey and time::

    timestamp,count                         timestamp,journey,count
    2025-11-11T20:00:00,3120                2025-11-11T20:00:00,checkout,1904
    2025-11-11T20:01:00,3188                2025-11-11T20:00:00,balance,780

Timestamps are ISO-8601 (a time zone is optional; times without one are taken as UTC) or epoch
seconds. Lines starting with ``#`` and blank lines are skipped. Every mistake is reported at
``file:line:column`` in one :class:`~loadkit.spec.errors.SpecError` (exit 2)::

    traffic = read_traffic("profiles/traffic/double11-evening.csv")
    text = traffic_profile(traffic, peak_multiplier=1.3, time_scale=0.05)

Each input interval becomes one ``step`` stage at the interval's average rate (count ÷ interval
× multiplier; rates are per run second and never scaled, only durations are), so a run
reproduces the file's per-interval rates exactly; ``merge`` joins neighbouring intervals whose
rates are within that share of each other. By-journey files give each stage a ``mix``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import yaml

from loadkit import __version__
from loadkit.errors import ConfigError
from loadkit.profile.model import MIN_STAGE_RUN_S
from loadkit.spec.errors import Problem, SpecError
from loadkit.spec.modeline import modeline
from loadkit.spec.values import did_you_mean, format_duration

MAX_ROWS = 200_000
#: a profile's YAML may expand to at most 50,000 values (loadkit.spec.loader): ~7 per stage
MAX_STAGES = 5_000
MAX_PROBLEMS = 20
#: the spacings a traffic file may have, in seconds → what they are called
GRANULARITIES = {60: "per-minute", 1: "per-second"}
HEADERS = (("timestamp", "count"), ("timestamp", "journey", "count"))
_HEADER_HINT = "a header line 'timestamp,count' or 'timestamp,journey,count'"

#: the journeys, client and users of a generated profile when no --journeys-from is given:
#: the reference wallet's Double 11 mix (profiles/double11.yaml)
DEFAULT_BODY: dict[str, Any] = {
    "users": {"accounts": 1000, "max_in_flight": 2000},
    "journeys": [
        {"wallet": "pay_merchant", "name": "checkout", "weight": 60, "otp": True},
        {"wallet": "balance", "weight": 25},
        {"wallet": "p2p_transfer", "weight": 5},
        {"wallet": "topup", "weight": 10},
    ],
    "client": {
        "timeout": "8s",
        "retries": {
            "attempts": 3,
            "backoff": "500ms",
            "max_backoff": "4s",
            "honour_retry_after": True,
            "reuse_idempotency_key": True,
        },
    },
}


@dataclass(frozen=True)
class Traffic:
    """A validated traffic file: counts per interval (``interval_s`` 60 or 1) from ``start``
    (epoch seconds), and per journey when the file has a journey column."""

    file: str
    interval_s: int
    start: float
    counts: tuple[int, ...]
    by_journey: tuple[dict[str, int], ...] | None
    sha256: str
    first_text: str
    last_text: str
    tz: tzinfo = UTC  # the first timestamp's zone: times in names and comments are shown in it

    def local(self, t: float) -> datetime:
        """Epoch seconds as the file's wall clock."""
        return datetime.fromtimestamp(t, self.tz)

    @property
    def granularity(self) -> str:
        return GRANULARITIES[self.interval_s]

    @property
    def unit(self) -> str:
        return "min" if self.interval_s == 60 else "s"

    @property
    def duration_s(self) -> float:
        return len(self.counts) * self.interval_s

    @property
    def journeys(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self.by_journey or ():
            names.update(dict.fromkeys(row))
        return list(names)


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def add(self, line: int | None, column: int | None, field: str, message: str) -> None:
        self.items.append(Problem(self.file, line, column, field, message))

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_PROBLEMS

    def raise_if_any(self) -> None:
        if self.items:
            if self.full:
                self.items.append(
                    Problem(self.file, None, None, "", f"stopped after {MAX_PROBLEMS} problems")
                )
            raise SpecError(self.items)


def _decode(data: bytes, problems: _Problems) -> str | None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        problems.add(1, 1, "", "the file is UTF-16 text; save it as UTF-8 CSV")
        return None
    try:
        return data.decode("utf-8-sig")  # a UTF-8 BOM (Excel's "CSV UTF-8") is fine
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        problems.add(
            line,
            column,
            "",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8 CSV",
        )
        return None


def parse_timestamp(text: str) -> float:
    """Epoch seconds from ISO-8601 (``2025-11-11T20:00:00``, ``…+08:00``, ``… 20:00``, ``Z``)
    or from epoch seconds; ``ValueError`` otherwise."""
    value = text.strip()
    if not value:
        raise ValueError("empty")
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            raise ValueError(value)
        return number
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _count(text: str) -> int:
    value = text.strip()
    if not value:
        raise ValueError("expected a count of transactions (a whole number ≥ 0), got nothing")
    try:
        number = float(value.replace("_", ""))
    except ValueError:
        raise ValueError(
            f"expected a count of transactions (a whole number ≥ 0), got '{value}'"
        ) from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite count, got '{value}'")
    if number < 0:
        raise ValueError(f"a count cannot be negative, got {value}")
    if number != int(number):
        raise ValueError(f"a count is a whole number of transactions, got {value}")
    return int(number)


def read_traffic(path: str | Path, *, journeys: Collection[str] | None = None) -> Traffic:
    """Read and check a traffic file; ``journeys``: the names a journey column may use."""
    file = str(path)
    problems = _Problems(file)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the traffic file ({exc.strerror or exc})") from exc
    text = _decode(data, problems)
    problems.raise_if_any()
    assert text is not None
    rows = [
        (number, row)
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
    ]
    # csv.reader numbers rows, not lines: the two differ only for quoted newlines, which a
    # traffic file has no use for
    if not rows:
        problems.add(1, 1, "", f"the file is empty: expected {_HEADER_HINT}, then rows")
        problems.raise_if_any()
    header_line, header = rows[0]
    names = tuple(c.strip().lower() for c in header)
    if names not in HEADERS:
        try:
            parse_timestamp(header[0])
        except ValueError:
            hint = ""
            if len(names) in (2, 3):
                expected = HEADERS[len(names) - 2]
                wrong = [n for n, e in zip(names, expected, strict=True) if n != e]
                hint = "".join(did_you_mean(n, ("timestamp", "journey", "count")) for n in wrong)
            problems.add(
                header_line,
                1,
                "header",
                f"expected {_HEADER_HINT}, got '{','.join(header)}'{hint}",
            )
        else:
            problems.add(header_line, 1, "header", f"missing header: expected {_HEADER_HINT} first")
        problems.raise_if_any()
    by_journey = len(names) == 3
    body = rows[1:]
    if len(body) > MAX_ROWS:
        problems.add(
            body[MAX_ROWS][0],
            1,
            "",
            f"more than {MAX_ROWS:,} rows; use per-minute data (or cut the file) for long periods",
        )
        problems.raise_if_any()
    times: list[float] = []  # one per interval
    counts: list[int] = []
    mixes: list[dict[str, int]] = []
    lines: list[int] = []
    texts: list[str] = []
    seen_at: dict[float, int] = {}
    last_t: float | None = None
    last_line = header_line
    for number, row in body:
        if problems.full:
            break
        if len(row) != len(names):
            problems.add(
                number,
                1,
                "",
                f"expected {len(names)} fields ({','.join(names)}), got {len(row)}",
            )
            continue
        try:
            t = parse_timestamp(row[0])
        except ValueError:
            problems.add(
                number,
                1,
                "timestamp",
                "expected an ISO-8601 time like 2025-11-11T20:00:00 (or +08:00) or epoch "
                f"seconds, got '{row[0].strip()}'",
            )
            continue
        column = sum(len(c) + 1 for c in row[:-1]) + 1
        try:
            count = _count(row[-1])
        except ValueError as exc:
            problems.add(number, column, "count", str(exc))
            continue
        journey = row[1].strip() if by_journey else ""
        if by_journey:
            jcol = len(row[0]) + 2
            if not journey:
                problems.add(number, jcol, "journey", "expected a journey name, got nothing")
                continue
            if journeys is not None and journey not in journeys:
                hint = did_you_mean(journey, journeys) or f" (journeys: {', '.join(journeys)})"
                problems.add(number, jcol, "journey", f"unknown journey '{journey}'{hint}")
                continue
        if last_t is not None and t < last_t:
            problems.add(
                number,
                1,
                "timestamp",
                f"'{row[0].strip()}' is before the previous row's time (line {last_line}); "
                "rows must be in time order",
            )
            continue
        if last_t is not None and t == last_t:
            if not by_journey:
                problems.add(
                    number,
                    1,
                    "timestamp",
                    f"duplicate timestamp '{row[0].strip()}' (also line {seen_at[t]})",
                )
                continue
            if journey in mixes[-1]:
                problems.add(
                    number,
                    1,
                    "timestamp",
                    f"duplicate row for journey '{journey}' at '{row[0].strip()}' "
                    f"(also line {seen_at[t]})",
                )
                continue
            mixes[-1][journey] = count
            counts[-1] += count
            last_line = number
            continue
        seen_at[t] = number
        times.append(t)
        counts.append(count)
        mixes.append({journey: count} if by_journey else {})
        lines.append(number)
        texts.append(row[0].strip())
        last_t, last_line = t, number
    if not problems.items and len(times) < 2:
        where = lines[0] if lines else header_line
        problems.add(
            where,
            1,
            "",
            f"only {len(times)} time(s) in the file: at least two are needed to tell the "
            "spacing (per minute or per second)",
        )
    problems.raise_if_any()
    interval = _interval(times, lines, texts, problems)
    problems.raise_if_any()
    return Traffic(
        file=file,
        interval_s=interval,
        start=times[0],
        counts=tuple(counts),
        by_journey=tuple(mixes) if by_journey else None,
        sha256=hashlib.sha256(data).hexdigest(),
        first_text=texts[0],
        last_text=texts[-1],
        tz=_zone(texts[0]),
    )


def _zone(text: str) -> tzinfo:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return UTC  # epoch seconds
    return parsed.tzinfo or UTC


def _interval(times: list[float], lines: list[int], texts: list[str], problems: _Problems) -> int:
    """The file's spacing (60 or 1 s), checked to be the same between every two rows."""
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    common = Counter(gaps).most_common(1)[0][0]
    if common not in GRANULARITIES:
        problems.add(
            lines[1],
            1,
            "timestamp",
            f"rows are {format_duration(common)} apart; expected per-minute (60s) or "
            "per-second (1s) rows",
        )
        return 60
    interval = int(common)
    for i, gap in enumerate(gaps, start=1):
        if gap == interval or problems.full:
            continue
        where = (
            f"'{texts[i]}' is {format_duration(gap)} after the previous row (line {lines[i - 1]})"
        )
        if gap in GRANULARITIES:
            message = (
                f"mixed granularity: {where}, but the file is {GRANULARITIES[interval]}; "
                "use one granularity throughout"
            )
        elif gap > interval and gap % interval == 0:
            missing = int(gap // interval) - 1
            message = (
                f"gap: {where}: {missing} {GRANULARITIES[interval][4:]} row(s) missing; add "
                "them (with count 0 if there was no traffic)"
            )
        else:
            message = (
                f"irregular spacing: {where}; {GRANULARITIES[interval]} rows must be exactly "
                f"{interval}s apart"
            )
        problems.add(lines[i], 1, "timestamp", message)
    return interval


# -- the profile ------------------------------------------------------------------------------


def _journey_body(journeys_from: Path | None) -> tuple[dict[str, Any], list[str]]:
    """Journeys, client, users, network and seed of the generated profile, and journey names."""
    if journeys_from is None:
        body = dict(DEFAULT_BODY)
    else:
        from loadkit.profile.model import load_profile

        profile = load_profile(journeys_from)  # its own mistakes, at its own lines
        raw = yaml.safe_load(journeys_from.read_text(encoding="utf-8"))
        body = {k: raw[k] for k in ("seed", "users", "journeys", "client", "network") if k in raw}
        if profile.data:  # the journeys' data files, found wherever the new profile is written
            folder = journeys_from.absolute().parent
            body["data"] = {
                source.name: {"file": str(folder / source.file), "mode": source.mode.value}
                | ({"numbers": list(source.numbers)} if source.numbers else {})
                for source in profile.data
            }
        return body, [j.name for j in profile.journeys]
    return body, [str(j.get("name") or j["wallet"]) for j in body["journeys"]]


def journey_names(journeys_from: Path | None) -> list[str]:
    """The journey names a by-journey traffic file may use with these journeys."""
    return _journey_body(journeys_from)[1]


def _rate_text(per_interval: float, unit: str) -> str:
    text = f"{per_interval:.3f}".rstrip("0").rstrip(".")
    return f"{text}/{unit}"


def _segments(traffic: Traffic, merge: float) -> list[tuple[int, int]]:
    """``[start, end)`` interval indexes of each stage: neighbours within ``merge`` of the
    segment's mean rate are joined."""
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(traffic.counts) + 1):
        if i < len(traffic.counts) and merge > 0:
            seg = traffic.counts[start : i + 1]
            mean = sum(seg) / len(seg)
            if all(abs(c - mean) <= merge * mean for c in seg) and mean > 0:
                continue
            if mean == 0 and not any(seg):
                continue
        out.append((start, i))
        start = i
    return out


def _clock_name(index: int, stamp: datetime, interval: int) -> str:
    return f"{index:03d}-{stamp:%H%M}" if interval == 60 else f"{index:05d}-{stamp:%H%M%S}"


def traffic_profile(
    traffic: Traffic,
    *,
    journeys_from: Path | None = None,
    peak_multiplier: float = 1.0,
    time_scale: float = 1.0,
    merge: float = 0.0,
    name: str | None = None,
) -> str:
    """The profile's YAML text, with a comment header saying where it came from."""
    if not (math.isfinite(peak_multiplier) and peak_multiplier > 0):
        raise ConfigError(f"--peak-multiplier: expected a number above 0, got {peak_multiplier}")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ConfigError(f"--time-scale: expected a number above 0, got {time_scale}")
    if not 0 <= merge < 1:
        raise ConfigError(f"--merge: expected a share from 0% to 99%, got {merge:.0%}")
    body, names = _journey_body(journeys_from)
    if traffic.by_journey is not None:
        unknown = [j for j in traffic.journeys if j not in names]
        if unknown:
            raise ConfigError(
                f"{traffic.file}: journey(s) {', '.join(unknown)} are not in the profile's "
                f"journeys ({', '.join(names)})"
            )
    if traffic.interval_s * time_scale < MIN_STAGE_RUN_S:
        least = MIN_STAGE_RUN_S / traffic.interval_s
        raise ConfigError(
            f"--time-scale {time_scale:g}: one {traffic.granularity[4:]} of traffic would last "
            f"{traffic.interval_s * time_scale:g}s of run time; stages last at least "
            f"{MIN_STAGE_RUN_S:g}s: use --time-scale {least:.4g} or more"
        )
    segments = _segments(traffic, merge)
    if len(segments) > MAX_STAGES:
        raise ConfigError(
            f"{traffic.file}: {len(segments):,} stages; a profile holds at most {MAX_STAGES:,}. "
            "Join similar intervals with --merge (e.g. --merge 5%) or use per-minute rows"
        )
    stages = []
    for index, (a, b) in enumerate(segments):
        n = b - a
        mean = sum(traffic.counts[a:b]) / n * peak_multiplier
        stage: dict[str, Any] = {
            "name": _clock_name(
                index, traffic.local(traffic.start + a * traffic.interval_s), traffic.interval_s
            ),
            "duration": format_duration(n * traffic.interval_s),
            "rate": _rate_text(mean, traffic.unit),
        }
        if traffic.by_journey is not None:
            mix: dict[str, int] = {}
            for row in traffic.by_journey[a:b]:
                for journey, count in row.items():
                    mix[journey] = mix.get(journey, 0) + count
            if any(mix.values()):
                stage["mix"] = mix
        stages.append(stage)
    source = Path(traffic.file).name
    stem = Path(traffic.file).stem
    peak = max(traffic.counts)
    peak_at = traffic.counts.index(peak)
    peak_time = traffic.local(traffic.start + peak_at * traffic.interval_s)
    run_s = traffic.duration_s * time_scale
    out: dict[str, Any] = {
        "name": name or stem,
        "description": f"shaped like {source} ({traffic.granularity}, "
        f"{traffic.first_text} → {traffic.last_text}) × {peak_multiplier:g}",
        "time_scale": time_scale,
        **{k: body[k] for k in ("seed",) if k in body},
        "stages": stages,
        **{k: body[k] for k in ("users", "data", "journeys", "client", "network") if k in body},
    }
    unit = traffic.granularity[4:]  # "minute" or "second"
    each = (
        f"one {unit} of the file, at that {unit}'s rate"
        if merge == 0
        else f"neighbouring {unit}s of the file within {merge:.0%} of their mean, at their "
        "average rate"
    )
    header = [
        f"# Generated by `loadkit profile from-traffic` (loadkit {__version__}) from {source}",
        f"# (sha256 {traffic.sha256[:16]}…): {len(traffic.counts)} {traffic.granularity} rows, "
        f"{traffic.first_text} → {traffic.last_text},",
        f"# peak {peak:,} per {traffic.unit} at {peak_time:%H:%M:%S}.",
        f"# Each stage is {each} × {peak_multiplier:g} (this year's forecast).",
        f"# time_scale {time_scale:g}: the {format_duration(traffic.duration_s)} of traffic runs "
        f"in {format_duration(run_s)}; rates are never scaled, only durations.",
        "# Journeys: "
        + (f"from {journeys_from}" if journeys_from else "the reference wallet's Double 11 mix")
        + (
            ", weighted per stage by the file's journey counts (mix)."
            if traffic.by_journey is not None
            else "."
        ),
        "",
    ]
    text = yaml.safe_dump(
        out, sort_keys=False, allow_unicode=True, width=200, default_flow_style=None
    )
    return "\n".join(header) + "\n" + text


def write_traffic_profile(
    traffic_file: str | Path,
    out: str | Path,
    *,
    journeys_from: Path | None = None,
    peak_multiplier: float = 1.0,
    time_scale: float = 1.0,
    merge: float = 0.0,
    name: str | None = None,
) -> str:
    """Read, convert, write, and check the written profile with the profile validator; the
    validator's one-line summary of it."""
    from loadkit.spec import validate_file

    names = journey_names(journeys_from)
    traffic = read_traffic(traffic_file, journeys=names)
    text = traffic_profile(
        traffic,
        journeys_from=journeys_from,
        peak_multiplier=peak_multiplier,
        time_scale=time_scale,
        merge=merge,
        name=name,
    )
    # the editor's schema line closes the comment block (the first line says it is generated)
    head, _, body = text.partition("\n\n")
    text = f"{head}\n{modeline('profile', Path(out))}\n\n{body}"
    Path(out).write_text(text, encoding="utf-8")
    return validate_file(out)
