"""An in-memory keyring for the tests: the ``ring`` fixture (a pytest plugin listed in
``tests/conftest.py``) installs a :class:`MemoryKeyring` as the process's keyring backend — one
that looks secure to ``core.credentials``, so tokens are kept and can be seen to come and go —
and puts the previous backend back afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import keyring.backend
import pytest

from core.credentials import SERVICE


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A secure-looking keyring in memory (the device's keyring, shared by its clients)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)

    def token(self, account: str) -> str | None:
        """The refresh token Concord keeps for ``account`` (a profile key), if any."""
        return self.entries.get((SERVICE, account))


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)
