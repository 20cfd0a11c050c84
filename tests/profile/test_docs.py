"""docs/profiles.md is checked against the reader: it names every key the reader accepts, and
every YAML example in it validates (with the reader and with the schema)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from loadkit.profile import read, read_data, read_journeys, read_stages
from loadkit.profile.model import load_profile
from loadkit.schemas import load_schema
from loadkit.spec.loader import load_document
from loadkit.spec.schema import Keys

DOC = Path(__file__).parents[2] / "docs" / "profiles.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml\n(.*?)```", TEXT, re.DOTALL)


def test_every_key_the_reader_accepts_is_documented() -> None:
    keys: set[str] = set()
    for module in (read, read_data, read_journeys, read_stages):
        for value in vars(module).values():
            if isinstance(value, Keys):
                keys.update(value.all)
    keys.update(read_journeys.WALLET_PARAMS)
    missing = sorted(k for k in keys if f"`{k}`" not in TEXT and f"`{k}:" not in TEXT)
    assert not missing, f"docs/profiles.md does not describe: {missing}"


def test_there_are_examples_of_every_part() -> None:
    assert len(EXAMPLES) >= 6
    for part in ("repeat:", "http:", "data:", "network:", "integrity:", "tags:"):
        assert any(part in example for example in EXAMPLES), part


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example {i}" for i in range(len(EXAMPLES))])
def test_every_example_validates(
    tmp_path: Path, example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(example)
    text = example
    if "stages" not in data:
        text += "stages:\n  - {name: a, duration: 10s, rate: 5}\n"
    if "journeys" not in data:
        text += "journeys:\n  - wallet: balance\n"
    _data_files(tmp_path, data, example)
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    load_profile(path)  # the reader: raises SpecError with every problem
    errors = list(
        Draft7Validator(load_schema("profile")).iter_errors(load_document(path).root.plain())
    )
    assert not errors, [e.message for e in errors]


def _data_files(folder: Path, data: dict[str, object], example: str) -> None:
    """CSV files for the example's data sources, with the columns its templates use."""
    sources = data.get("data") or {}
    assert isinstance(sources, dict)
    users = data.get("users") or {}
    rows = users.get("accounts", 1000) if isinstance(users, dict) else 1000
    for name, entry in sources.items():
        file = entry if isinstance(entry, str) else entry["file"]
        numbers = [] if isinstance(entry, str) else entry.get("numbers", [])
        columns = sorted(set(re.findall(rf"\{{data\.{name}\.([A-Za-z0-9_-]+)\}}", example)))
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [",".join(columns)]
        lines += [
            ",".join(str(i) if c in numbers else f"{c}{i}" for c in columns) for i in range(rows)
        ]
        path.write_text("\n".join(lines) + "\n")
