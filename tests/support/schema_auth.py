"""What the schemathesis tests (``tests/server/test_schema*.py``) share: the live server signed
in as alice, the bearer token given through schemathesis's auth, every check, and the fixes to
examples that no schema can describe (a fresh ``Idempotency-Key``, a session of its own for a
logout)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from schemathesis import AuthContext, Case
from schemathesis.checks import CHECKS, load_all_checks

from core import protocol as p
from tests.support.live_server import PASSWORD, LiveServer, add_users

load_all_checks()
ALL_CHECKS = CHECKS.get_all()  # every registered check, also any a later schemathesis adds
STAND_IN = "Bearer alice"  # what an example carries until the test swaps in the real token


class BearerStandIn:
    """The bearer token, set through schemathesis so that it leaves it off the examples that
    test a missing credential (and ``ignored_auth`` knows what to take away). Examples can be
    made before the server exists (at collection): they get a stand-in, which the test swaps for
    the real token (``real_token``)."""

    def get(self, case: Case, ctx: AuthContext) -> str:
        return STAND_IN

    def set(self, case: Case, data: str, ctx: AuthContext) -> None:
        if case.headers is None:
            case.headers = {}
        case.headers["Authorization"] = data


def prepare(schema: Any) -> None:
    """Register the bearer auth on ``schema``, and allow ``GET changes`` its ``410``: a valid
    cursor whose history is gone (another epoch, trimmed, ahead of the head) is, like a 404, a
    state of the server that no schema can know. Every other status stays as schemathesis
    expects it (a 400 or 422 is still a failure)."""
    schema.auth(refresh_interval=None)(BearerStandIn)
    acceptance = schema.config.checks.positive_data_acceptance
    acceptance.expected_statuses = [*acceptance.expected_statuses, "410"]


def sign_in(server: LiveServer, user: str) -> str:
    """A fresh access token of ``user``."""
    r = httpx.post(
        server.url + p.API_PREFIX + "/auth/token", json={"username": user, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@contextmanager
def schema_server(data_dir: Path, tokens: dict[str, str]) -> Iterator[LiveServer]:
    """A live server on ``data_dir`` with alice, bob and carol; alice's token in ``tokens``."""
    add_users(data_dir)
    live = LiveServer(data_dir, login_attempts_per_address=100_000)  # logout cases sign in anew
    try:
        tokens["alice"] = sign_in(live, "alice")
        yield live
    finally:
        tokens.clear()
        live.stop()


def real_token(case: Case, server: LiveServer, tokens: dict[str, str]) -> None:
    """Swap the stand-in for alice's token; a logout ends a session, so each logout case signs
    carol in anew (and ``logout-all`` ends only carol's sessions, never the one the other cases
    use)."""
    if not (case.headers and case.headers.get("Authorization") == STAND_IN):
        return
    if case.path.startswith(p.API_PREFIX + "/auth/logout"):
        token = sign_in(server, "carol")
    else:
        token = tokens["alice"]
    case.headers["Authorization"] = f"Bearer {token}"


def fresh_idempotency_key(case: Case) -> None:
    """An ``Idempotency-Key`` names one operation: a valid example that reused a key from an
    earlier, different example would rightly get ``422 idempotency_key_reused`` (as the
    Idempotency-Key draft requires), which no schema can describe. So each valid example gets
    a key of its own; invalid ones keep theirs (any 4xx is right for them)."""
    meta = case.meta
    if (
        case.headers
        and "Idempotency-Key" in case.headers
        and meta is not None
        and meta.generation.mode.is_positive
    ):
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
