"""The operators' commands through the real ``concord-server`` entry point, against a server
that is serving (``user ...``, ``backup``) or stopped (``restore``), and TLS served directly."""

from __future__ import annotations

import datetime
import ipaddress
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.server_cli import CLI, ENV, cli, free_port
from tests.support.waiting import wait_until_sync

PW = "s3cret pass"


@contextmanager
def serving(
    data: Path,
    *extra: str,
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[httpx.Client]:
    """``concord-server serve`` on a free port; a client on its API; SIGTERM at the end."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(CLI),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--log-level",
            "warning",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**ENV, **(env or {})},
    )
    client = httpx.Client(base_url=f"{scheme}://127.0.0.1:{port}/api/v1", timeout=10, verify=verify)

    def healthy() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            return client.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until_sync(healthy, "the server to come up", timeout=20, interval=0.05)
        yield client
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if proc.stdout:
                proc.stdout.close()


def sign_in(client: httpx.Client, name: str, password: str = PW) -> httpx.Response:
    return client.post("/auth/token", json={"username": name, "password": password})


def users(data: Path) -> dict[str, list[str]]:
    r = cli("user", "list", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["USER", "CREATED", "(UTC)", "SESSIONS", "STATE"]
    return {row.split()[0]: row.split()[3:] for row in rows}


def test_user_commands_while_serving(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name in ("alice", "bob"):
        assert cli("add-user", name, "--data-dir", str(data), stdin=PW + "\n").returncode == 0
    with serving(data) as api:
        alice = [sign_in(api, "alice").json() for _ in range(2)]
        assert sign_in(api, "bob").status_code == 200
        assert users(data) == {"alice": ["2", "active"], "bob": ["1", "active"]}

        r = cli("user", "revoke-sessions", "alice", "--data-dir", str(data))
        assert r.returncode == 0, r.stderr
        assert "revoked 2 sessions of alice" in r.stdout
        for session in alice:  # no device can refresh any more
            r2 = api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
            assert r2.status_code == 401
        assert users(data)["alice"] == ["0", "active"]

        r = cli("user", "reset-password", "alice", "--data-dir", str(data), stdin="new pass\n")
        assert r.returncode == 0, r.stderr
        assert sign_in(api, "alice").status_code == 401
        assert sign_in(api, "alice", "new pass").status_code == 200

        r = cli("user", "remove", "bob", "--data-dir", str(data))
        assert r.returncode == 0, r.stderr
        assert sign_in(api, "bob").status_code == 401
        assert users(data)["bob"] == ["0", "removed"]
        # The name stays taken: nobody can become "bob" in bob's old conversations.
        assert cli("add-user", "bob", "--data-dir", str(data), stdin="x\n").returncode == 1

    for command in ("remove", "revoke-sessions"):
        r = cli("user", command, "nobody", "--data-dir", str(data))
        assert r.returncode == 1 and "no user 'nobody'" in r.stderr
    r = cli("user", "reset-password", "alice", "--data-dir", str(data), stdin="\n")
    assert r.returncode == 1 and "empty" in r.stderr
    r = cli("user", "list", "--data-dir", str(tmp_path / "nothing"))
    assert r.returncode == 1 and "no database" in r.stderr


def test_backup_while_serving_and_restore_under_a_new_epoch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    copy = tmp_path / "backup.db"
    assert cli("add-user", "alice", "--data-dir", str(data), stdin=PW + "\n").returncode == 0
    with serving(data) as api:
        auth = {"Authorization": "Bearer " + sign_in(api, "alice").json()["access_token"]}
        kept = "6f1c1c1e-0000-4000-8000-00000000000a"
        later = "6f1c1c1e-0000-4000-8000-00000000000b"
        assert api.post(
            "/conversations", json={"id": kept, "title": "kept"}, headers=auth
        ).is_success
        epoch = api.get("/health").json()["epoch"]

        r = cli("backup", str(copy), "--data-dir", str(data))
        assert r.returncode == 0, r.stderr
        assert api.post(
            "/conversations", json={"id": later, "title": "later"}, headers=auth
        ).is_success
        r = cli("backup", str(copy), "--data-dir", str(data))
        assert r.returncode == 1 and "exists" in r.stderr  # never overwritten
        r = cli("restore", str(copy), "--data-dir", str(data))
        assert r.returncode == 1 and "stop it first" in r.stderr
        r = cli("serve", "--port", str(free_port()), "--data-dir", str(data))
        assert r.returncode == 1 and "already serving" in r.stderr

    with closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        titles = {t for (t,) in db.execute("SELECT title FROM conversations")}
        assert titles == {"kept"}
    assert not list(tmp_path.glob("backup.db.part-*"))

    r = cli("restore", str(copy), "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    assert "clients will do a full sync" in r.stdout
    with serving(data) as api:
        new_epoch = api.get("/health").json()["epoch"]
        assert new_epoch != epoch and f"epoch {new_epoch}" in r.stdout
        auth = {"Authorization": "Bearer " + sign_in(api, "alice").json()["access_token"]}
        listed = api.get("/conversations", headers=auth).json()
        assert [c["id"] for c in listed["conversations"]] == [kept]
        # A cursor of the old epoch is not resumed: the client is told to sync again.
        r2 = api.get("/changes", params={"since": f"{epoch}:1"}, headers=auth)
        assert r2.status_code == 410 and r2.json()["error"]["code"] == "epoch_changed"

    r = cli("restore", str(tmp_path / "missing.db"), "--data-dir", str(data))
    assert r.returncode == 1 and "no backup" in r.stderr


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_served_directly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("add-user", "alice", "--data-dir", str(data), stdin=PW + "\n").returncode == 0
    cert, key = _self_signed(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    trust = ssl.create_default_context(cafile=str(cert))  # this certificate only
    with serving(data, *tls, scheme="https", verify=trust) as api:
        assert sign_in(api, "alice").status_code == 200
        with pytest.raises(httpx.TransportError):  # plain HTTP is not answered
            httpx.get(str(api.base_url).replace("https:", "http:") + "/health", timeout=5)
    r = cli("serve", "--data-dir", str(data), "--tls-cert", str(cert))
    assert r.returncode == 2 and "go together" in r.stderr


def test_http_limit_flags_and_environment_reach_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    limits = {"CONCORD_MAX_HEAD_BYTES": "4096"}
    with serving(data, "--head-timeout", "1", env=limits) as api:
        url = api.base_url
        with socket.create_connection((url.host, url.port), timeout=10) as sock:
            started = time.monotonic()
            sock.settimeout(5)
            assert sock.recv(100) == b""  # an idle connection, closed by --head-timeout 1
            assert time.monotonic() - started < 3
        big = api.get("/health", headers={"X-Pad": "a" * 8192})
        assert big.status_code == 431
        assert big.json()["error"]["code"] == "head_too_large"
        assert api.get("/health").status_code == 200
    for flag in ("--head-timeout", "--keepalive-timeout", "--max-connections"):
        r = cli("serve", "--data-dir", str(data), flag, "0")
        assert r.returncode == 2 and "must be positive" in r.stderr
