"""The names of the events ``Client.on(name, callback)`` delivers, with their arguments.

Strings for now; typed signal objects replace them in Step 7 (issue 10).
"""

from __future__ import annotations

EVENTS = (
    "conversation_changed",
    "conversation_removed",
    "messages_added",
    "status_changed",
    "conflict",
    "error",
    "trace",  # (source, text): SSE events and bus messages, for the sync inspector
    "outbox_changed",  # (unsettled count): actions not yet acknowledged and applied
    "draft_changed",  # (conversation id, text): this device's unsent text there changed
    "draft_restored",  # (conversation id, text): a refused send's text was put back
)
