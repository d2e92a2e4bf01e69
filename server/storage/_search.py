"""``GET search`` as SQL (docs/architecture.md §4.3): the caller's messages matching a query.

The index is ``message_search`` (server migration step 4): FTS5 with external content — the
bodies stay in ``messages`` — kept right by triggers on every insert, edit, erase and delete.
Its rowids follow the order messages were written, so matches come newest first and a page stops
after ``limit`` of them; ``before`` is the rowid the previous page ended at. Only conversations
the caller is a member of are searched, and deleted messages never match.
"""

from __future__ import annotations

from typing import Any

from core import protocol as p

from ._messages import MESSAGE_COLUMNS, MESSAGE_FIELDS, message_from_row

Conn = Any


def _match(terms: list[str]) -> str:
    """Every word as a quoted FTS5 string (never query syntax), the last one as a prefix."""
    parts = ['"' + t.replace('"', '""') + '"' for t in terms]
    parts[-1] += "*"
    return " AND ".join(parts)


def search_messages(
    conn: Conn, user_id: int, terms: list[str], before: int | None, limit: int
) -> p.SearchPage:
    if not terms:
        return p.SearchPage([])
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, s.rowid FROM message_search s "
        "JOIN message_search_rows r ON r.rowid = s.rowid "
        "JOIN members mb ON mb.conversation_id = r.conversation_id AND mb.user_id = ? "
        "JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq "
        "JOIN users u ON u.id = m.author_id "
        "WHERE message_search MATCH ? AND s.rowid < ? AND m.deleted = 0 "
        "ORDER BY s.rowid DESC LIMIT ?",
        (user_id, _match(terms), before if before is not None else 1 << 62, limit + 1),
    ).fetchall()
    page = [message_from_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    return p.SearchPage(page, rows[limit - 1][MESSAGE_FIELDS] if more else None)
