"""The wallet's deliberately unsafe modes, for demonstrating and testing the integrity check.

``ack-before-commit`` answers a money movement 201 at once and queues it; a background writer
applies the queue every ``write_behind_interval`` seconds through the normal (idempotent) ledger
call, and *drops* what fails — the write-behind bug. A killed instance loses its queue, a
database outage loses everything acknowledged during it. ``ignore-idempotency`` lives in the
database (``wallet_move_ignoring_key`` in schema.sql): the stored answer of a key is forgotten
before each movement, so a retry is applied again (the key is still recorded on the
transaction, so the duplicates can be counted). ``misapply`` applies one movement in four
otherwise than asked (:func:`misapply`: one fen off, or to the next account): the ledger stays
balanced, so only a check of each movement's amount, payer and payee against what the client
sent finds it::

    writer = WriteBehind(ledger, interval=0.5)
    writer.start()
    body = writer.accept(Movement(key, caller, digest, "transfer", caller, 42, 500, None, None))
    misapply("lk-…-0-7", "transfer", 17, 42, 500)     # (17, 42, 499), (17, 43, 500) or as asked
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from loadkit.wallet.contract import UnsafeMode
from loadkit.wallet.ledger import Ledger

log = logging.getLogger("loadkit.wallet")

#: how many queued movements the writer applies at once
_BATCH = 16

BANNER = {
    UnsafeMode.ACK_BEFORE_COMMIT: (
        "money movements are ACKNOWLEDGED BEFORE THEY ARE COMMITTED (written in the background; "
        "a crash or a database outage LOSES acknowledged payments)"
    ),
    UnsafeMode.IGNORE_IDEMPOTENCY: (
        "Idempotency-Key is IGNORED: a retried payment is APPLIED AGAIN (double charges)"
    ),
    UnsafeMode.MISAPPLY: (
        "one movement in four is APPLIED WRONGLY: another amount (one fen off) or ANOTHER PAYEE "
        "than the request asked for"
    ),
}


def misapply(
    key: str, kind: str, from_account: int, to_account: int, amount: int
) -> tuple[int, int, int]:
    """``misapply``: what gets applied instead of ``(from, to, amount)``. Chosen by the key, so
    a replay is misapplied the same way: one key in eight one fen off, one in eight (of the
    payments and transfers) to the next account (when it is not the payer), the rest as
    asked."""
    pick = zlib.crc32(key.encode()) % 8
    if pick == 1 or (pick == 2 and kind == "topup"):
        return from_account, to_account, amount - 1 if amount > 1 else amount + 1
    if pick == 2:
        payee = to_account + 1 if to_account + 1 != from_account else to_account + 2
        return from_account, payee, amount
    return from_account, to_account, amount


def announce(mode: UnsafeMode, instance: str) -> None:
    """Say loudly, at start, that this instance is unsafe on purpose."""
    line = "!" * 78
    log.warning(
        "%s\nUNSAFE WALLET (%s, --unsafe %s): %s.\nFor demonstrating loadkit's integrity "
        "check only; never run a real service like this.\n%s",
        line,
        instance,
        mode.value,
        BANNER[mode],
        line,
    )


@dataclass(frozen=True, slots=True)
class Movement:
    """The arguments of one :meth:`Ledger.move` call."""

    key: str
    account_id: int
    request_hash: str
    kind: str
    from_account: int
    to_account: int
    amount: int
    memo: str | None
    order_id: str | None


class WriteBehind:
    """Acknowledge now, apply later, drop on failure (``ack-before-commit``)."""

    def __init__(self, ledger: Ledger, interval: float) -> None:
        self.ledger = ledger
        self.interval = interval
        self._queue: list[Movement] = []
        self._applying = 0
        self._task: asyncio.Task[None] | None = None
        self.applied = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Acknowledged movements not yet applied (nor dropped)."""
        return len(self._queue) + self._applying

    def accept(self, m: Movement) -> dict[str, Any]:
        """Queue ``m``; the 201 body the client gets (no transaction id: there is none yet)."""
        self._queue.append(m)
        body: dict[str, Any] = {
            "transaction_id": None,
            "kind": m.kind,
            "from_account": m.from_account,
            "to_account": m.to_account,
            "amount": m.amount,
            "balance": None,
        }
        if m.memo is not None:
            body["memo"] = m.memo
        if m.order_id is not None:
            body["order_id"] = m.order_id
        return body

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Stop the writer after one last flush (a graceful stop loses nothing)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        batch, self._queue = self._queue, []
        self._applying = len(batch)
        failed = 0
        try:
            for i in range(0, len(batch), _BATCH):
                chunk = batch[i : i + _BATCH]
                results = await asyncio.gather(
                    *(self._apply(m) for m in chunk), return_exceptions=True
                )
                failed += sum(1 for r in results if isinstance(r, BaseException))
                self._applying -= len(chunk)
        finally:
            self._applying = 0
        self.applied += len(batch) - failed
        self.dropped += failed
        if failed:
            log.error("write-behind: DROPPED %d acknowledged movement(s) that failed", failed)

    async def _apply(self, m: Movement) -> None:
        await self.ledger.move(
            m.key,
            m.account_id,
            m.request_hash,
            m.kind,
            m.from_account,
            m.to_account,
            m.amount,
            m.memo,
            m.order_id,
        )
