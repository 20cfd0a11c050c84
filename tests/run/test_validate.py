"""``validate_file``: every shipped profile passes, other kinds of file get a clear answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.run.validate import validate_file, validate_files
from loadkit.spec import SpecError

PROFILES = sorted((Path(__file__).parents[2] / "profiles").glob("*.yaml"))


def test_the_six_profiles_and_the_http_example_ship() -> None:
    names = {path.stem for path in PROFILES}
    expected = {"smoke", "double11", "spring-festival", "payday", "flash-sale", "diurnal"}
    assert expected | {"http-example"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_every_shipped_profile_validates(path: Path) -> None:
    summary = validate_file(path)
    assert summary.startswith(f"{path}: profile '{path.stem}': ")


def test_summary_of_smoke() -> None:
    path = Path(__file__).parents[2] / "profiles" / "smoke.yaml"
    assert validate_file(path) == (
        f"{path}: profile 'smoke': 4 stages, 45s, peak 50/s, 6 journeys, 0 network classes"
    )


def test_summary_mentions_the_time_scale() -> None:
    path = Path(__file__).parents[2] / "profiles" / "diurnal.yaml"
    assert "1d (runs 14m24s, time_scale 0.01)" in validate_file(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "faults: []\n",
            "1:9: faults: expected at least one fault, got an empty list",
        ),
        (
            "objectives: []\n",
            "1:13: objectives: expected at least one objective, got an empty list",
        ),
        (
            "hello: world\n",
            "1:1: cannot tell what this file is: a profile has 'stages', a chaos "
            "scenario 'faults' or 'timeline', an SLO file 'objectives', a system file 'services'",
        ),
    ],
)
def test_other_kinds_of_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        validate_file(path)
    assert str(caught.value) == f"{path}:{expected}"


def test_a_misspelt_stages_key_is_still_checked_as_a_profile(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("stage:\n  - {name: a, duration: 1s, rate: 1}\njourneys: [{wallet: login}]\n")
    with pytest.raises(SpecError) as caught:
        validate_file(path)
    assert str(caught.value) == f"{path}:1:1: stage: unknown key 'stage'; did you mean 'stages'?"


def test_validate_files_reports_the_problems_of_every_file(tmp_path: Path) -> None:
    good = Path(__file__).parents[2] / "profiles" / "smoke.yaml"
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("stages: []\njourneys: [{wallet: login}]\n")
    second.write_text("")
    assert validate_files([good]) == [validate_file(good)]
    with pytest.raises(SpecError) as caught:
        validate_files([good, second, first])
    assert str(caught.value).splitlines() == [
        f"{first}:1:9: stages: expected at least one stage, got an empty list",
        f"{second}: the file is empty",
    ]
