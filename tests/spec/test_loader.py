"""YAML loading with marks: places, paths, duplicate keys, and wrapped syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.errors import ExitCode
from loadkit.spec.errors import SpecError
from loadkit.spec.loader import (
    MAX_BYTES,
    MAX_DEPTH,
    Map,
    Mark,
    Scalar,
    Seq,
    load_document,
    parse_document,
)
from tests.support import loadkit


def test_every_key_and_value_knows_its_place_and_path() -> None:
    doc = parse_document("name: x\nstages:\n  - name: a\n    duration: 10s\n", "p.yaml")
    stages = doc.root.items["stages"]
    assert isinstance(stages, Seq)
    stage = stages.items[0]
    assert isinstance(stage, Map)
    duration = stage.items["duration"]
    assert isinstance(duration, Scalar)
    assert (duration.value, duration.mark, duration.path) == (
        "10s",
        Mark(4, 15),
        "stages[0].duration",
    )
    assert stage.key_marks["duration"] == Mark(4, 5)
    assert doc.root.plain() == {"name": "x", "stages": [{"name": "a", "duration": "10s"}]}


def test_safe_load_semantics_for_scalars() -> None:
    doc = parse_document("a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\n200: ok\n", "p.yaml")
    assert doc.root.plain() == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "1", "200": "ok"}


def test_anchors_and_merge_keys_keep_the_place_they_were_written() -> None:
    text = "base: &b {duration: 10s, rate: 5}\nstage:\n  <<: *b\n  rate: 7\n"
    doc = parse_document(text, "p.yaml")
    stage = doc.root.items["stage"]
    assert isinstance(stage, Map)
    assert stage.plain() == {"duration": "10s", "rate": 7}
    assert stage.items["duration"].mark == Mark(1, 21)  # in the anchor, where it is written
    assert stage.items["duration"].path == "stage.duration"
    assert doc.problems == ()


def test_duplicate_keys_are_problems() -> None:
    doc = parse_document("a: 1\nb: 2\na: 3\n", "p.yaml")
    assert [str(p) for p in doc.problems] == [
        "p.yaml:3:1: a: duplicate key 'a' (first set on line 1)"
    ]


def test_odd_keys_are_quoted_in_paths() -> None:
    doc = parse_document("headers:\n  x y: 1\n", "p.yaml")
    headers = doc.root.items["headers"]
    assert isinstance(headers, Map)
    assert headers.items["x y"].path == 'headers["x y"]'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yaml: the file is empty"),
        ("# only a comment\n", "p.yaml: the file is empty"),
        (
            "- a\n- b\n",
            "p.yaml:1:1: expected a mapping of 'key: value' lines at the top level, got a list",
        ),
        (
            "just words\n",
            "p.yaml:1:1: expected a mapping of 'key: value' lines at the top level, "
            "got the single value 'just words'",
        ),
        (
            "a: 1\n\tb: 2\n",
            "p.yaml:2:1: a tab character; YAML is indented with spaces and needs a space after ':'",
        ),
        ("a: b: c\n", "p.yaml:1:5: invalid YAML: mapping values are not allowed here"),
        (
            "a: [1, 2\nb: 3\n",
            "p.yaml:2:2: invalid YAML: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence at line 1, column 4)",
        ),
        ("a: *nowhere\n", "p.yaml:1:4: invalid YAML: found undefined alias 'nowhere'"),
        (
            "a: 1\n---\nb: 2\n",
            "p.yaml:2:1: invalid YAML: but found another document "
            "(expected a single document in the stream at line 1, column 1)",
        ),
    ],
)
def test_file_level_errors(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_document(text, "p.yaml")
    assert str(caught.value) == expected


def test_unsafe_tags_are_refused() -> None:
    doc = parse_document("a: !!python/object:os.system ls\n", "p.yaml")
    assert [str(p) for p in doc.problems] == [
        "p.yaml:1:4: a: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'"
    ]


def test_alias_bombs_are_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(SpecError, match="expands to more than 50000 values"):
        parse_document("\n".join(lines) + "\n", "p.yaml")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_document(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_document(latin)


def test_a_1000_level_nested_list_is_a_usage_error_through_the_cli(tmp_path: Path) -> None:
    """It used to end in a RecursionError traceback and exit 1."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: deep\nstages:\n  - " + "[" * 1000 + "]" * 1000 + "\n")
    run = loadkit("validate", str(deep))
    assert run.returncode == ExitCode.USAGE, run.stderr
    assert "Traceback" not in run.stderr and "RecursionError" not in run.stderr
    assert f"{deep}:3:{4 + MAX_DEPTH - 1}: lists and mappings nested more than" in run.stderr


def test_nesting_up_to_the_limit_is_fine_and_one_more_is_not() -> None:
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"  # + the top-level map
    assert parse_document(ok, "p.yaml").problems == ()
    too_deep = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    with pytest.raises(SpecError, match=r"p.yaml:1:\d+: lists and mappings nested more than 64"):
        parse_document(too_deep, "p.yaml")


def test_aliases_cannot_nest_deeper_than_the_text() -> None:
    """Each anchor wraps the previous one: shallow text, a deep value."""
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 200)]
    with pytest.raises(SpecError, match=r"nested more than 64 levels deep") as caught:
        parse_document("\n".join(lines) + "\n", "p.yaml")
    assert caught.value.problems[0].line is not None


def test_files_over_the_size_limit_are_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: big\n" + "# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(SpecError, match=r"big.yaml: the file is larger than 4 MiB"):
        load_document(big)
