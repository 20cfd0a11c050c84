"""Money integrity: did every acknowledged payment reach the ledger exactly once?

During a run the load side logs every money movement with its idempotency key and the client's
final view of it (``acks.bin``). After the run (and after the chaos rollback) the check compares
that log with the ledger and writes ``integrity.json``: acknowledged movements that are **lost**,
movements **duplicated**, applied ones never sent (**unexpected**), refused ones applied anyway,
how the **unknown** outcomes turned out, conservation of money and negative balances::

    from loadkit.integrity import ReferenceLedger, check_run
    result = check_run(run_dir, ReferenceLedger(stack))
    assert result.ok, result.problems()

See docs/integrity.md.
"""

from loadkit.integrity.core import (
    FILENAME,
    SCHEMA,
    Ack,
    Applied,
    IntegrityResult,
    Source,
    View,
    compare,
    read_acks,
)
from loadkit.integrity.run import check_run, read_integrity, source_for
from loadkit.integrity.sources import (
    HttpLedger,
    LedgerSource,
    LedgerView,
    ReferenceLedger,
    SqlLedger,
)

__all__ = [
    "FILENAME",
    "SCHEMA",
    "Ack",
    "Applied",
    "HttpLedger",
    "IntegrityResult",
    "LedgerSource",
    "LedgerView",
    "ReferenceLedger",
    "Source",
    "SqlLedger",
    "View",
    "check_run",
    "compare",
    "read_acks",
    "read_integrity",
    "source_for",
]
