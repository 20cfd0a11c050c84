"""The comparison on hand-built logs and ledgers: every count is exact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loadkit.integrity import Ack, Applied, LedgerView, View, check_run, compare, read_acks
from loadkit.integrity.columns import AppliedTable, of_this_run_table, read_ack_table
from loadkit.integrity.core import MAX_EXAMPLES

A, R, U, S = View.ACKNOWLEDGED, View.REFUSED, View.UNKNOWN, View.SENT


def test_a_clean_ledger_is_ok() -> None:
    acks = [Ack("a1", A), Ack("a2", A), Ack("r1", R), Ack("u1", U), Ack("u2", U)]
    result = compare(acks, [Applied("a1"), Applied("a2"), Applied("u1")], source="sql")
    assert result.ok is True
    assert (result.acknowledged, result.refused, result.unknown, result.total) == (2, 1, 2, 5)
    assert (result.unknown_applied, result.unknown_not_applied) == (1, 1)
    assert result.problems() == []


def test_known_lost_duplicated_unknown_and_unexpected_counts_are_exact() -> None:
    acks = (
        [Ack(f"ok{i}", A) for i in range(100)]
        + [Ack(f"lost{i}", A) for i in range(7)]
        + [Ack(f"dup{i}", A) for i in range(5)]
        + [Ack(f"ref{i}", R) for i in range(20)]
        + [Ack(f"refapp{i}", R) for i in range(2)]
        + [Ack(f"unk-yes{i}", U) for i in range(13)]
        + [Ack(f"unk-no{i}", U) for i in range(9)]
        + [Ack("unk-twice", U)]
    )
    applied = (
        [Applied(f"ok{i}") for i in range(100)]
        + [Applied(f"dup{i}", 2 + i) for i in range(5)]  # 2,3,4,5,6 times
        + [Applied(f"refapp{i}") for i in range(2)]
        + [Applied(f"unk-yes{i}") for i in range(13)]
        + [Applied("unk-twice"), Applied("unk-twice")]  # two rows for one key add up
        + [Applied(f"ghost{i}") for i in range(3)]
    )
    r = compare(acks, applied, source="reference", money_conserved=True, negative_balances=0)
    assert r.ok is False
    assert (r.acknowledged, r.refused, r.unknown) == (112, 22, 23)
    assert r.lost == 7
    assert r.duplicated == 6  # dup0..dup4 and unk-twice
    assert r.extra_applications == (1 + 2 + 3 + 4 + 5) + 1
    assert r.unexpected == 3
    assert r.refused_applied == 2
    assert (r.unknown_applied, r.unknown_not_applied) == (14, 9)
    assert sorted(r.examples["lost"]) == [f"lost{i}" for i in range(7)]
    assert sorted(r.examples["unexpected"]) == ["ghost0", "ghost1", "ghost2"]
    assert len(r.problems()) == 4


def test_a_key_logged_twice_takes_its_strongest_view() -> None:
    r = compare([Ack("k", U), Ack("k", A)], [], source="sql")
    assert (r.acknowledged, r.unknown, r.lost) == (1, 0, 1)


@pytest.mark.parametrize(
    ("conserved", "negative", "ok"),
    [(True, 0, True), (None, None, True), (False, 0, False), (True, 2, False)],
)
def test_ledger_facts_decide_too(conserved: bool | None, negative: int | None, ok: bool) -> None:
    r = compare(
        [Ack("k", A)],
        [Applied("k")],
        source="reference",
        money_conserved=conserved,
        negative_balances=negative,
    )
    assert r.ok is ok


def test_examples_are_capped() -> None:
    r = compare([Ack(f"k{i}", A) for i in range(50)], [], source="sql")
    assert r.lost == 50 and len(r.examples["lost"]) == MAX_EXAMPLES


def test_the_integrity_json_contract(tmp_path: Path) -> None:
    r = compare([Ack("a", A), Ack("u", U)], [Applied("a", 2)], source="http", unsafe_mode="x")
    data = json.loads(r.write(tmp_path).read_text())
    assert data["schema"] == "loadkit.integrity/v1"
    assert data["ok"] is False and data["error"] is None and data["source"] == "http"
    assert data["acks"] == {
        "acknowledged": 1,
        "refused": 0,
        "unknown": 1,
        "in_flight": 0,
        "total": 2,
    }
    for key in ("lost", "unexpected", "refused_applied", "unknown_applied", "mismatched"):
        assert data[key] == 0
    assert data["details_compared"] == 0
    assert data["duplicated"] == 1 and data["unknown_not_applied"] == 1
    assert data["money_conserved"] is None and data["negative_balances"] is None
    assert data["examples"]["duplicated"] == ["a"] and data["unsafe_mode"] == "x"
    assert isinstance(data["checked_at"], float)


def _acks_file(run_dir: Path, lines: list[dict[str, object]], cut: bool = False) -> None:
    text = json.dumps({"schema": "loadkit.acks/v1"}) + "\n"
    text += "".join(json.dumps(line) + "\n" for line in lines)
    if cut:
        text += '{"t": 9.0, "key": "half'  # a run killed mid-write
    (run_dir / "acks.jsonl").write_text(text)
    (run_dir / "run.json").write_text(json.dumps({"started_at": 1000.0}))


class FixedLedger:
    name = "sql"

    def __init__(self, view: LedgerView | Exception) -> None:
        self.view = view
        self.since: float | None = None

    def fetch(self, since: float) -> LedgerView:
        self.since = since
        if isinstance(self.view, Exception):
            raise self.view
        return self.view


def test_check_run_reads_the_log_and_writes_integrity_json(tmp_path: Path) -> None:
    lines = [
        {"t": 1.0, "key": "k1", "account": 2, "amount": 100, "view": "acknowledged"},
        {"t": 2.0, "key": "k2", "account": 3, "amount": 100, "view": "unknown"},
        {"t": 3.0, "key": "k3", "account": 3, "amount": 100, "view": "refused"},
    ]
    _acks_file(tmp_path, lines, cut=True)
    assert [a.key for a in read_acks(tmp_path / "acks.jsonl")] == ["k1", "k2", "k3"]
    source = FixedLedger(LedgerView([Applied("k2")], money_conserved=True, negative_balances=0))
    result = check_run(tmp_path, source)
    assert source.since == 1000.0
    assert result.lost == 1 and result.unknown_applied == 1 and result.ok is False
    data = json.loads((tmp_path / "integrity.json").read_text())
    assert data["lost"] == 1 and data["examples"]["lost"] == ["k1"]


def test_a_source_that_fails_gives_ok_null_and_the_reason(tmp_path: Path) -> None:
    _acks_file(tmp_path, [])
    result = check_run(tmp_path, FixedLedger(RuntimeError("connection refused")))
    assert result.ok is None
    data = json.loads((tmp_path / "integrity.json").read_text())
    assert data["ok"] is None and "connection refused" in data["error"]


def test_keys_only_sent_are_in_flight_unknowns_resolved_against_the_ledger() -> None:
    """A key with nothing but `sent` (its load process died with it in flight) is unknown, and
    resolved like one; a later view of the same key wins over `sent`."""
    acks = [
        Ack("done", S),
        Ack("done", A),  # the usual: sent, then acknowledged
        Ack("gone-applied", S),
        Ack("gone-not-applied", S),
        Ack("late", S),
        Ack("late", U),  # the client gave up on it: unknown, not in flight
    ]
    result = compare(acks, [Applied("done"), Applied("gone-applied")], source="reference")
    assert result.ok is True and result.unexpected == 0
    assert (result.acknowledged, result.unknown, result.in_flight) == (1, 3, 2)
    assert (result.unknown_applied, result.unknown_not_applied) == (1, 2)


def test_an_applied_amount_payer_or_payee_other_than_sent_is_mismatched() -> None:
    acks = [
        Ack("right", S, amount=500, payer=2, payee=9),
        Ack("right", A),
        Ack("amount", A, amount=500, payer=2, payee=9),
        Ack("payee", A, amount=700, payer=2, payee=9),
        Ack("payer", U, amount=100, payer=3, payee=9),
        Ack("topup", A, amount=100, payer=None, payee=4),  # the bank pays: not compared
        Ack("no-details", A),
    ]
    applied = [
        Applied("right", 1, 500, 2, 9),
        Applied("amount", 1, 499, 2, 9),
        Applied("payee", 1, 700, "2", 10),  # an id as text is the same id
        Applied("payer", 1, 100, 4, 9),
        Applied("topup", 1, 100, 1, 4),
        Applied("no-details", 1, 1, 1, 1),
    ]
    result = compare(acks, applied, source="reference")
    assert result.ok is False and result.mismatched == 3 and result.details_compared == 5
    assert result.examples["mismatched"] == [
        "amount: amount 499 (sent 500)",
        "payee: payee 10 (sent 9)",
        "payer: payer 4 (sent 3)",
    ]
    assert "3 applied with another amount, payer or payee (mismatched)" in result.problems()
    # a source without details compares nothing
    bare = compare(acks, [Applied(a.key) for a in applied], source="sql")
    assert bare.ok is True and bare.details_compared == 0 and "mismatched" not in bare.examples


def test_read_acks_reads_every_log_of_the_run(tmp_path: Path) -> None:
    """acks.bin and each spill in acks.d/ (a torn last record skipped)."""
    from loadkit.rundir import RunDir
    from loadkit.rundir.acks import AckLog, ack_record

    rd = RunDir(tmp_path)
    log = AckLog(rd.acks)
    log.write([ack_record({"t": 1.0, "key": "k1", "view": "sent", "amount": 7})])
    log.write([ack_record({"t": 1.0, "key": "k1", "view": "acknowledged", "amount": 7})])
    log.write([ack_record({"t": 2.0, "key": "k4-torn", "view": "sent"})])
    log.close()
    os.truncate(rd.acks, rd.acks.stat().st_size - 1)
    rd.acks_spill.mkdir()
    spill = AckLog(rd.acks_spill / "worker-1-42.bin")
    spill.write([ack_record({"t": 3.0, "key": "k2", "view": "sent", "amount": 5, "from": 2})])
    spill.close()
    acks = read_acks(*rd.ack_logs())
    assert [(a.key, a.view) for a in acks] == [("k1", A), ("k2", S)]
    assert (acks[0].amount, acks[1].amount, acks[1].payer) == (7, 5, 2)


def test_read_acks_reads_the_json_lines_logs_of_older_runs(tmp_path: Path) -> None:
    """acks.jsonl and each spill in acks.d/ (a torn last line skipped)."""
    from loadkit.rundir import ACKS_JSONL, RunDir

    rd = RunDir(tmp_path)
    header = json.dumps({"schema": "loadkit.acks/v1"}) + "\n"
    first = json.dumps({"key": "k1", "view": "acknowledged"})
    rd.file(ACKS_JSONL).write_text(header + first + "\n")
    rd.acks_spill.mkdir()
    spill = {"key": "k2", "view": "sent", "amount": 5, "from": 2, "to": "m7"}
    (rd.acks_spill / "worker-1-42.jsonl").write_text(
        header + json.dumps(spill) + '\n{"key": "k3", "vi'
    )
    acks = read_acks(*rd.ack_logs())
    assert [(a.key, a.view) for a in acks] == [("k1", A), ("k2", S)]
    assert (acks[1].amount, acks[1].payer, acks[1].payee) == (5, 2, "m7")


def test_another_runs_movements_on_the_same_ledger_are_left_out(tmp_path: Path) -> None:
    # a capacity search's fine pass after its stopped coarse pass, on the same database: the
    # coarse pass's last movements are applied after the fine pass started (issue 19's soak)
    ours, earlier = "lk-0a1b2c3d-0-", "lk-9f8e7d6c-0-"
    lines = [
        {"t": 1.0, "key": f"{ours}1", "account": 2, "amount": 100, "view": "acknowledged"},
        {"t": 2.0, "key": f"{ours}2", "account": 3, "amount": 100, "view": "unknown"},
    ]
    _acks_file(tmp_path, lines)
    applied = [Applied(f"{ours}1"), *(Applied(f"{earlier}{n}") for n in range(474))]
    applied.append(Applied("user-key-7"))  # a key loadkit did not make: still this run's
    source = FixedLedger(LedgerView(applied, money_conserved=True, negative_balances=0))
    result = check_run(tmp_path, source)
    assert result.unexpected == 1 and result.lost == 0 and result.unknown_not_applied == 1
    assert result.ledger is not None
    assert any("474 applied movements of other runs" in n for n in result.ledger["notes"])
    # without the other run, nothing to note
    acks = read_ack_table(tmp_path / "acks.jsonl")
    kept, others = of_this_run_table(acks, applied[:1])
    assert (len(kept), others) == (1, 0)
    # the rows kept are this run's and the user's own, whichever form the ledger gives
    for ledger in (applied, AppliedTable.of(applied)):
        kept, others = of_this_run_table(acks, ledger)
        texts = sorted(acks.interner.key_text(k) for k in kept.key.tolist())
        assert (texts, others) == ([f"{ours}1", "user-key-7"], 474)
