"""Pure rules of the message view: which messages share a header, day separator labels, list
times, and message bodies turned into safe rich text.

Safety: a body is *always* passed through :func:`html.escape` first; only then are ``http://``,
``https://`` and ``mailto:`` runs of the escaped text wrapped in links. Nothing else becomes markup,
so ``<b>x</b>`` shows as typed and ``javascript:`` is never a link.
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import QDate, QDateTime, QLocale

from core.model import MessageView

GROUP_MS = 5 * 60 * 1000  # consecutive messages of one author within 5 minutes share a header
SAFE_SCHEMES = ("http", "https", "mailto")

# On the *escaped* text: a run continues over anything but whitespace, quotes and entities other
# than "&amp;" (so "&quot;", "&lt;"... which stand for characters that end a URL, end it).
_URL = re.compile(r"\b(?:https?://|mailto:)(?:[^\s&<>\"']|&amp;)+", re.IGNORECASE)
_TRAILING = ".,;:!?*"


def _trim(url: str) -> str:
    """Drop trailing punctuation, and a closing parenthesis that does not close one of its own."""
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def linkify(body: str, link_color: str = "") -> str:
    """``body`` as rich text: escaped, line breaks kept, http(s)/mailto runs clickable."""
    escaped = html.escape(body, quote=True)
    style = f' style="color:{link_color}"' if link_color else ""
    out, pos = [], 0
    for m in _URL.finditer(escaped):
        url = _trim(m.group(0))
        scheme_only = url.lower() in ("http://", "https://", "mailto:")
        if scheme_only:
            continue
        out.append(escaped[pos : m.start()])
        out.append(f'<a href="{url}"{style}>{url}</a>')
        pos = m.start() + len(url)
    out.append(escaped[pos:])
    text = "".join(out).replace("\r\n", "\n").replace("\n", "<br>")
    return f'<span style="white-space: pre-wrap">{text}</span>'


def is_safe_link(href: str) -> bool:
    """Whether ``href`` may be opened: http(s) and mailto only."""
    scheme = href.split(":", 1)[0].lower() if ":" in href else ""
    return scheme in SAFE_SCHEMES


def local_date(ms: int) -> QDate:
    return QDateTime.fromMSecsSinceEpoch(int(ms)).toLocalTime().date()


def starts_group(prev: MessageView | None, m: MessageView) -> bool:
    """Whether ``m`` gets a header: not when it follows ``prev`` by the same author within
    :data:`GROUP_MS` on the same day."""
    if prev is None or prev.author != m.author:
        return True
    if not 0 <= m.created_at - prev.created_at <= GROUP_MS:
        return True
    return local_date(prev.created_at) != local_date(m.created_at)


def starts_day(prev: MessageView | None, m: MessageView) -> bool:
    return prev is None or local_date(prev.created_at) != local_date(m.created_at)


def day_label(ms: int, today: QDate | None = None, locale: QLocale | None = None) -> str:
    """ "Today", "Yesterday", the weekday within the last week, else the date."""
    day = local_date(ms)
    today = today or QDate.currentDate()
    locale = locale or QLocale()
    days = day.daysTo(today)
    if days == 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if 1 < days < 7:
        return locale.dayName(day.dayOfWeek(), QLocale.FormatType.LongFormat)
    return locale.toString(day, QLocale.FormatType.LongFormat)


def clock(ms: int, locale: QLocale | None = None) -> str:
    """The local time of day in the locale's short format ("14:05", "2:05 PM")."""
    dt = QDateTime.fromMSecsSinceEpoch(int(ms)).toLocalTime()
    return (locale or QLocale()).toString(dt.time(), QLocale.FormatType.ShortFormat)


def list_time(ms: int, now: QDateTime | None = None, locale: QLocale | None = None) -> str:
    """A list row's time: today the time, within the last week the weekday ("Tue"), else the
    date in the locale's short format."""
    dt = QDateTime.fromMSecsSinceEpoch(int(ms)).toLocalTime()
    now = now or QDateTime.currentDateTime()
    locale = locale or QLocale()
    days = dt.date().daysTo(now.toLocalTime().date())
    if days <= 0:
        return locale.toString(dt.time(), QLocale.FormatType.ShortFormat)
    if days < 7:
        return locale.dayName(dt.date().dayOfWeek(), QLocale.FormatType.ShortFormat)
    return locale.toString(dt.date(), QLocale.FormatType.ShortFormat)


def full_time(ms: int, locale: QLocale | None = None) -> str:
    """Date and time, for tooltips."""
    dt = QDateTime.fromMSecsSinceEpoch(int(ms)).toLocalTime()
    return (locale or QLocale()).toString(dt, QLocale.FormatType.LongFormat)
