"""Suite-wide setup: Qt runs headless, and the fixtures that several folders share.

Shared helpers and fixtures live in ``tests/support/`` (see docs/architecture.md §11). Fixture
modules are plugins listed here (pytest reads ``pytest_plugins`` only in this conftest); the
folders' conftests hold their own fixtures and import nothing from each other.
"""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# No keyring unless a test installs one (tests.support.keyrings' ``ring``, or the real
# gnome-keyring of test_credentials in a D-Bus session of its own): the developer's keyring is
# never touched, and keyring's own choice (a chainer that may try an unreachable Secret
# Service for a second per call, and answer nothing) never decides a test.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

# Plain asserts in support modules report like asserts in tests (before anything imports them).
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.live_server",
    "tests.support.bus",
    "tests.support.services",
    "tests.support.keyrings",
]
