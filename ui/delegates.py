"""The item delegates moved to :mod:`ui.conversation_delegate` and :mod:`ui.message_delegate`
(shared painting helpers in :mod:`ui.paint`); these names stay importable from here."""

from ui.conversation_delegate import ConversationDelegate, RowLayout, badge_text
from ui.message_delegate import MessageDelegate, message_time
from ui.paint import danger_color, scaled_font

__all__ = [
    "ConversationDelegate",
    "MessageDelegate",
    "RowLayout",
    "badge_text",
    "danger_color",
    "message_time",
    "scaled_font",
]
