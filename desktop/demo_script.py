"""What ``--demo`` plays: a small fixed cast, the conversations they share with you and lines that
read like chat. Data only; :mod:`desktop.demo` decides when each thing happens."""

from __future__ import annotations

from dataclasses import dataclass

# The other people on the demo's embedded server (one account each).
CAST = ("Priya", "Marco", "Lena", "Sam")


@dataclass(frozen=True)
class Thread:
    """A conversation the cast has with you: who is in it (its creator first), what they say in
    order (cycled), and the titles it is renamed between (the first is the one it starts with)."""

    titles: tuple[str, ...]
    people: tuple[str, ...]
    lines: tuple[tuple[str, str], ...]

    @property
    def title(self) -> str:
        return self.titles[0]


THREADS = (
    Thread(
        ("Design review", "Design review — sidebar", "Design review (Thursday)"),
        ("Priya", "Marco"),
        (
            ("Priya", "I pushed the new sidebar mockups, have a look when you get a minute"),
            ("Marco", "Looks clean. The unread badges feel a bit loud though"),
            ("Priya", "Fair. I'll try the muted blue from the style guide"),
            ("Marco", "Can we keep the avatars round? Square ones read like app icons"),
            ("Priya", "Round it is 👍"),
            ("Marco", "Dark mode screenshots are in the shared folder"),
            ("Priya", "Thanks! Let's walk through them on Thursday"),
            ("Marco", "Thursday 10:00 works for me"),
        ),
    ),
    Thread(
        ("Lunch on Friday", "Lunch on Friday 🍜", "Ramen on Friday"),
        ("Lena", "Marco"),
        (
            ("Lena", "Lunch on Friday? The new ramen place opened around the corner"),
            ("Marco", "I'm in. 12:30?"),
            ("Lena", "12:30 works, I'll book a table for four"),
            ("Marco", "Could we make it 12:45? I have a call until half past"),
            ("Lena", "Sure, moved it to 12:45 🍜"),
            ("Marco", "They have a vegetarian menu too, I checked"),
            ("Lena", "Perfect, see you there"),
        ),
    ),
    Thread(
        ("Release 2.4", "Release 2.4 — code freeze", "Release 2.4 (shipping)"),
        ("Sam", "Priya"),
        (
            ("Sam", "Release branch is cut. Only fixes from now on, please"),
            ("Priya", "The sign-in crash fix is still in review"),
            ("Sam", "I'll look at it right after standup"),
            ("Priya", "CI is green on the branch ✅"),
            ("Sam", "Release notes draft is up, comments welcome"),
            ("Priya", "Read them, two small suggestions inline"),
            ("Sam", "Shipping tomorrow morning then 🚀"),
        ),
    ),
)

# Started rarely, one at a time, once the demo has been running for a while.
LATER = (
    Thread(
        ("Weekend hike", "Weekend hike ⛰️"),
        ("Lena", "Sam"),
        (
            ("Lena", "Anyone up for a hike on Saturday? Forecast says sunny"),
            ("Sam", "Yes! The lake trail?"),
            ("Lena", "Lake trail. Meet at the station at 9"),
            ("Sam", "Bringing sandwiches"),
        ),
    ),
    Thread(
        ("Team offsite", "Team offsite — agenda"),
        ("Priya", "Marco", "Lena", "Sam"),
        (
            ("Priya", "Offsite is booked for the 14th, agenda ideas welcome"),
            ("Marco", "A session on onboarding, please"),
            ("Sam", "And a retro on the 2.4 release"),
            ("Lena", "I can run the retro"),
        ),
    ),
    Thread(
        ("Book club", "Book club 📚"),
        ("Marco", "Lena"),
        (
            ("Marco", "Finished the book, that ending!"),
            ("Lena", "No spoilers, I'm two chapters behind"),
            ("Marco", "Fine, fine. Next meeting Wednesday?"),
            ("Lena", "Wednesday works"),
        ),
    ),
)

# For a conversation the script does not know (renamed by you, say).
GENERIC = (
    "Sounds good",
    "Back in ten, grabbing a coffee",
    "Thanks, that helps",
    "Let me check and get back to you",
    "Agreed 👍",
    "Can we talk about this tomorrow?",
)


def thread_of(title: str) -> Thread | None:
    """The scripted thread a conversation title belongs to (None: not one of the script's)."""
    for thread in (*THREADS, *LATER):
        if title in thread.titles:
            return thread
    return None
