"""Building blocks of the schemas: the value forms every spec file shares (durations, rates,
percents, bandwidths, names), and objects checked against a reader's :class:`Keys`.

Patterns are written for both Python's ``re`` and ECMAScript (what editors run): no inline
flags, so case-insensitive units are spelt with character classes (:func:`anycase`)::

    duration()  # {"type": "string", "pattern": "^\\s*(?:…)+\\s*$", "description": …}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from loadkit.spec.schema import Keys

Schema = dict[str, Any]

DRAFT = "http://json-schema.org/draft-07/schema#"
NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NAME_HINT = "letters, digits, '_', '.' or '-'"


def anycase(word: str) -> str:
    """``ms`` → ``[mM][sS]``: a case-insensitive word without regex flags."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def one_of_words(words: Iterable[str]) -> str:
    return "(?:" + "|".join(anycase(w) for w in words) + ")"


DURATION_PATTERN = rf"{NUMBER}\s*{one_of_words(['ms', 'min', 's', 'm', 'h', 'd'])}"
DURATION = rf"^\s*(?:{DURATION_PATTERN}\s*)+$"
RATE = rf"^\s*{NUMBER}\s*[kK]?\s*(?:/\s*{one_of_words(['sec', 'min', 'hr', 's', 'm', 'h'])})?\s*$"
PERCENT_TO_100 = r"^\s*0*(?:100(?:\.0+)?|\d{1,2}(?:\.\d+)?|\.\d+)\s*%\s*$"
PERCENT_ANY = rf"^\s*{NUMBER}\s*%\s*$"
BANDWIDTH = rf"^\s*{NUMBER}\s*{one_of_words(['bps', 'kbps', 'mbps', 'gbps'])}\s*$"


def described(schema: Schema, description: str, **extra: Any) -> Schema:
    """``schema`` with a description (what an editor shows on hover) and e.g. ``examples``."""
    return {**schema, "description": description, **extra}


def duration(description: str = "", *, examples: Iterable[str] = ("90s", "2m", "500ms")) -> Schema:
    """A duration with its unit: ``90s``, ``2m``, ``1h30m``, ``500ms`` (a bare number is not)."""
    return {
        "type": "string",
        "pattern": DURATION,
        "description": description or "a duration with its unit: 500ms, 90s, 2m, 1h30m, 1d",
        "examples": list(examples),
    }


def rate(description: str = "") -> Schema:
    """Arrivals per second: a number, or ``120/s``, ``7200/min``, ``1.5k/s``."""
    return {
        "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": RATE}],
        "description": description or "arrivals per second: 120, 120/s, 7200/min, 1.5k/s",
        "examples": ["100/s", "6000/min"],
    }


def percent(description: str = "", *, above_zero: bool = False) -> Schema:
    """A share up to 100%: ``10%`` or a fraction from 0 to 1."""
    number: Schema = {"type": "number", "maximum": 1}
    number["exclusiveMinimum" if above_zero else "minimum"] = 0
    return {
        "anyOf": [number, {"type": "string", "pattern": PERCENT_TO_100}],
        "description": description or "a percentage like 10% (or a fraction from 0 to 1)",
        "examples": ["10%"],
    }


def bandwidth(description: str = "") -> Schema:
    return {
        "type": "string",
        "pattern": BANDWIDTH,
        "description": description or "bits per second: 512kbps, 10mbps",
        "examples": ["512kbps", "10mbps"],
    }


def name(description: str, pattern: str = NAME) -> Schema:
    return {"type": "string", "pattern": pattern, "description": f"{description} ({NAME_HINT})"}


def text(description: str) -> Schema:
    return {"type": "string", "minLength": 1, "description": description}


def integer(description: str, minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def boolean(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def enum(values: Iterable[str], description: str) -> Schema:
    return {"type": "string", "enum": list(values), "description": description}


def obj(
    keys: Keys,
    properties: Mapping[str, Schema],
    description: str = "",
    **extra: Any,
) -> Schema:
    """A mapping with exactly the keys a reader accepts: every key of ``keys`` must be described
    in ``properties`` (and nothing else), ``required`` ones are required, others are refused."""
    missing = set(keys.all) - set(properties)
    extra_keys = set(properties) - set(keys.all)
    if missing or extra_keys:
        raise ValueError(
            f"the schema and the reader disagree on the keys of {description or 'a mapping'}: "
            f"undescribed {sorted(missing)}, unknown to the reader {sorted(extra_keys)}"
        )
    schema: Schema = {
        "type": "object",
        "properties": {key: properties[key] for key in keys.all},
        "additionalProperties": False,
    }
    if keys.required:
        schema["required"] = list(keys.required)
    if description:
        schema["description"] = description
    return {**schema, **extra}


def list_of(item: Schema, description: str, *, min_items: int = 1) -> Schema:
    return {"type": "array", "items": item, "minItems": min_items, "description": description}


def ref(definition: str) -> Schema:
    return {"$ref": f"#/definitions/{definition}"}


def document(title: str, description: str, root: Schema, definitions: Schema) -> Schema:
    """A whole schema file: draft-07 (what editors support best), with its definitions."""
    return {
        "$schema": DRAFT,
        "title": title,
        "description": description,
        **root,
        "definitions": definitions,
    }
