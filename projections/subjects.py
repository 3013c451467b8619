"""`case_subjects`: each case's subject, for the HTTP API's "text in subject" search.

The subject is personal (domain/personal.py), and the reporting tables keep no personal text in the
clear (docs/security-data.md): a row holds the subject sealed with the customer's own key (the
keyring, the same one the event store seals it with), so forgetting the customer (destroying that
key) makes it unreadable at once, in the table, its free pages, its WAL and its backups. The rows
are deleted too when the projection reaches the privacy audit's entry for the customer: their
forgetting is in the log after every event read before it, so no row sealed from an earlier read
survives it. Without a keyring (store_encryption off) the subject is not kept at all.

Fed in the view's own transaction (projections/view.py calls `write` and `forget`): exactly once,
rebuilt with the other tables.
"""

from __future__ import annotations

from typing import Any

from domain.personal import FORGOTTEN, WITHHELD

TABLE = "case_subjects"


def aad(case_id: str) -> str:
    """Where a sealed subject belongs: a token copied to another row fails authentication."""
    return f"reporting:{TABLE}|{case_id}|subject"


def write(view: Any, c: Any, opened: list[tuple[str, str, str]]) -> None:
    """The sealed subjects of the cases a batch opened: (case id, customer id, subject) each."""
    sealer = getattr(view, "sealer", None)
    if sealer is None:
        return
    # Read after the customer was forgotten: nothing to keep (sealing it would make them a new key).
    rows = [(case_id, customer_id, sealer.seal(customer_id, aad(case_id), subject))
            for case_id, customer_id, subject in opened if subject and subject not in (FORGOTTEN, WITHHELD)]
    view.write_rows(c, TABLE, ("case_id", "customer_id", "subject"), rows,
                    "ON CONFLICT (case_id) DO UPDATE SET customer_id = excluded.customer_id, subject = excluded.subject")


def forget(view: Any, c: Any, customer_id: str) -> None:
    """The privacy audit says the customer was forgotten: their rows go."""
    c.execute(view.sql(f"DELETE FROM {view.table(TABLE)} WHERE customer_id = ?"), [customer_id])


def unseal(sealer: Any, case_id: str, token: str | None) -> str | None:
    """The subject of a row, or None (not kept, or the customer forgotten)."""
    if token is None or sealer is None:
        return None
    return sealer.unseal(aad(case_id), token)
