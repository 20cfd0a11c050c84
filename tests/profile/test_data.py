"""Data files of a profile (``data:``): read with the profile, relative to its folder, used as
``{data.SOURCE.COLUMN}``; every mistake in the block or in a file is reported at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from loadkit.profile.data import DataMode, DataSource, read_csv
from loadkit.profile.model import load_profile
from loadkit.spec import SpecError

ACCOUNTS = "username,password\n" + "".join(f"user{i},pw{i}\n" for i in range(5))
CARDS = "number,cvv,limit\n4111,123,50\n5500,456,75.5\n\n"
PROFILE = """
users: {accounts: 5}
data:
  accounts: data/accounts.csv
  cards: {file: data/cards.csv, mode: shared-random, numbers: [limit]}
stages:
  - {name: a, duration: 10s, rate: 5}
journeys:
  - name: pay
    http:
      - path: /login/{data.accounts.username}
        json: {password: "{data.accounts.password}"}
      - path: /pay
        method: POST
        json: {card: "{data.cards.number}", limit: "{data.cards.limit}"}
"""


def write(folder: Path, text: str = PROFILE, **files: str) -> Path:
    """The profile in ``folder/profile.yaml``, and ``files`` under ``folder/data/``."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / "data" / f"{name}.csv").write_text(content, encoding="utf-8")
    path = folder / "profile.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_profile(path, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_sources_are_read_relative_to_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "tests", accounts=ACCOUNTS, cards=CARDS)
    monkeypatch.chdir(tmp_path)  # not the profile's folder
    profile = load_profile(Path("tests/profile.yaml"))
    accounts, cards = profile.data
    assert accounts == DataSource(
        "accounts",
        "data/accounts.csv",
        DataMode.PER_USER,
        ("username", "password"),
        tuple((f"user{i}", f"pw{i}") for i in range(5)),
    )
    assert cards.mode is DataMode.SHARED_RANDOM and cards.numbers == ("limit",)
    assert cards.rows == (("4111", "123", 50), ("5500", "456", 75.5))  # numbers, blank line gone
    assert cards.row_dict(1) == {"number": "5500", "cvv": "456", "limit": 75.5}
    assert profile.journeys[0].steps[1].json["card"].variables == (  # type: ignore[union-attr]
        "data.cards.number",
    )
    assert path.exists()


def test_without_data_the_files_are_not_read(tmp_path: Path) -> None:
    path = write(tmp_path)  # no CSV files at all
    profile = load_profile(path, data=False)
    assert [(s.name, s.file, s.rows) for s in profile.data] == [
        ("accounts", "data/accounts.csv", ()),
        ("cards", "data/cards.csv", ()),
    ]


def test_data_given_as_text_is_used_instead_of_files(tmp_path: Path) -> None:
    path = write(tmp_path)  # a remote worker: the profile's text, the files sent with it
    profile = load_profile(path, data={"data/accounts.csv": ACCOUNTS, "data/cards.csv": CARDS})
    assert len(profile.data[0].rows) == 5 and profile.data[1].rows[0][2] == 50
    assert problems(path, data={"data/accounts.csv": ACCOUNTS}) == [
        f"{path}:4:17: data.cards.file: data/cards.csv was not sent with the profile"
    ]


def test_a_missing_file_and_an_unknown_column(tmp_path: Path) -> None:
    text = PROFILE.replace("{data.cards.number}", "{data.cards.numbr}")
    path = write(tmp_path, text, accounts=ACCOUNTS)
    assert problems(path) == [
        f"{path}:4:17: data.cards.file: no such file: data/cards.csv (looked for "
        f"{tmp_path}/data/cards.csv); paths start at the profile's folder",
    ]
    path = write(tmp_path, text, cards=CARDS)
    assert problems(path) == [
        f"{path}:14:22: journeys[0].http[1].json.card: data source 'cards' has no column "
        "'numbr'; did you mean 'number'? (its columns: number, cvv, limit)"
    ]


def test_an_empty_file_and_a_header_without_rows(tmp_path: Path) -> None:
    path = write(tmp_path, accounts="\n\n", cards="number,cvv,limit\n")
    assert problems(path) == [
        f"{path}:3:13: data.accounts: data/accounts.csv is empty: expected a header line naming "
        "the columns, then rows",
        f"{path}:4:17: data.cards.file: data/cards.csv has a header but no rows: add at least "
        "one line of values",
    ]


def test_a_file_too_short_for_one_row_per_user(tmp_path: Path) -> None:
    path = write(tmp_path, PROFILE.replace("accounts: 5}", "accounts: 8}"), accounts=ACCOUNTS)
    (tmp_path / "data" / "cards.csv").write_text(CARDS)
    assert problems(path) == [
        f"{path}:3:13: data.accounts: data/accounts.csv has 5 rows, but mode 'per-user' gives "
        "each of the 8 virtual users (users.accounts) a row of its own: add rows, lower "
        "users.accounts, or share the rows (mode: shared-sequential or shared-random)"
    ]


def test_mistakes_inside_a_file_are_reported_at_its_lines(tmp_path: Path) -> None:
    cards = "number,cvv,limit\n4111,123,50\n5500,456\n6011,789,lots\n"
    path = write(tmp_path, accounts="username,username\nu,p\n" + "u,p\n" * 4, cards=cards)
    folder = tmp_path / "data"
    assert problems(path) == [
        f"{folder}/accounts.csv:1:1: column 'username' is named twice in the header",
        f"{folder}/cards.csv:3:1: 2 values, but the header names 3 columns",
        f"{folder}/cards.csv:4:1: column 'limit' is listed under 'numbers', but 'lots' is not "
        "a number",
    ]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "data: data/accounts.csv",
            "1:7: data: expected a mapping of data source names to CSV files, like "
            "{accounts: data/accounts.csv}, got 'data/accounts.csv'",
        ),
        (
            "data: {cards: {file: data/cards.csv, mode: shared-randum}}",
            "1:44: data.cards.mode: unknown data mode 'shared-randum'; did you mean "
            "'shared-random'? (expected one of: per-user, per-user-random, shared-sequential, "
            "shared-random)",
        ),
        (
            "data: {cards: {path: data/cards.csv}}",
            "1:15: data.cards.file: missing required key 'file' in this data source\n"
            "1:16: data.cards.path: unknown key 'path' (expected one of: file, mode, numbers)",
        ),
        (
            "data: {cards: data/cards.txt}",
            "1:15: data.cards: expected a CSV file (*.csv), got 'data/cards.txt'",
        ),
        (
            "data: {cards: {file: data/cards.csv, numbers: limit}}",
            "1:47: data.cards.numbers: expected a list of column names like [amount], got 'limit'",
        ),
        (
            'data: {"my cards": data/cards.csv}',
            "1:8: data[\"my cards\"]: 'my cards' is not a data source name (letters, digits, '_' "
            "or '-')",
        ),
    ],
)
def test_mistakes_in_the_data_block(tmp_path: Path, block: str, expected: str) -> None:
    text = f"{block}\nusers: {{accounts: 2}}\nstages:\n  - {{name: a, duration: 10s, rate: 5}}\n"
    text += "journeys:\n  - wallet: balance\n"
    path = write(tmp_path, text, cards=CARDS)
    assert problems(path) == [f"{path}:{line}" for line in expected.splitlines()]


def test_read_csv_handles_quotes_a_bom_and_blank_lines() -> None:
    text = '\ufeffname,memo\n\n"Li, Wei","said ""hi"""\n\nZhang,\n'
    source = read_csv(text, "x.csv", name="people")
    assert source.columns == ("name", "memo")
    assert source.rows == (("Li, Wei", 'said "hi"'), ("Zhang", ""))
    assert read_csv("", "x.csv", name="empty").columns == ()
