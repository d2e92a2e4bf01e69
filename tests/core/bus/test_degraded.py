"""Degraded mode: no usable runtime directory or socket -> in-process delivery, one warning."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from core.bus import BroadcastChannel, LocalBus
from core.bus import _runtime as runtime
from core.bus._transport import UnixTransport
from tests.support.bus import listen


def bus_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("core.bus.") and r.levelno >= logging.WARNING
    ]


async def check_in_process(bus: LocalBus) -> None:
    assert not bus.cross_process
    assert bus.is_leader and bus.epoch == 0 and bus.members() == [bus.member_id]
    c1, c2, c3 = (BroadcastChannel("x", bus=bus) for _ in range(3))
    r2, r3 = listen(c2), listen(c3)
    for i in range(3):
        c1.post_message({"i": i})
    await r2.wait(3)
    await r3.wait(3)
    assert r2.data == r3.data == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert await bus.request_state("nothing", timeout=0.2) is None
    await bus.close()


async def test_runtime_dir_below_a_file(runtime_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    blocker = Path(runtime_dir, "file")
    blocker.write_text("not a directory")
    bus = await LocalBus.open("s", runtime_dir=blocker / "sub")
    assert len(bus_warnings(caplog)) == 1
    await check_in_process(bus)
    assert len(bus_warnings(caplog)) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
async def test_scope_dir_owned_by_someone_else(
    runtime_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    hijacked = Path(runtime_dir, runtime.scope_key("s"))
    hijacked.mkdir(mode=0o777)
    os.chown(hijacked, 65534, 65534)
    bus = await LocalBus.open("s", runtime_dir=runtime_dir)
    assert len(bus_warnings(caplog)) == 1
    assert "owned by uid 65534" in caplog.text
    await check_in_process(bus)


async def test_scope_dir_is_a_symlink(runtime_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    target = Path(runtime_dir, "elsewhere")
    target.mkdir(mode=0o700)
    Path(runtime_dir, runtime.scope_key("s")).symlink_to(target)
    bus = await LocalBus.open("s", runtime_dir=runtime_dir)
    assert len(bus_warnings(caplog)) == 1
    await check_in_process(bus)


async def test_socket_path_too_long(runtime_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    deep = Path(runtime_dir, "d" * 60, "e" * 40)
    bus = await LocalBus.open("s", runtime_dir=deep)
    assert len(bus_warnings(caplog)) == 1
    assert "too long" in caplog.text
    await check_in_process(bus)


async def test_cannot_listen(
    runtime_dir: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: UnixTransport, factory: object) -> None:
        raise PermissionError("listening is not allowed here")

    monkeypatch.setattr(UnixTransport, "serve", refuse)
    bus = await LocalBus.open("s", runtime_dir=runtime_dir)
    assert len(bus_warnings(caplog)) == 1
    assert "cannot listen" in caplog.text
    await check_in_process(bus)


def test_default_runtime_dir_falls_back_to_a_private_temp_dir(
    runtime_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = Path(runtime_dir, "blocked")
    blocker.write_text("")
    fallback = Path(runtime_dir, "fallback")
    monkeypatch.setattr(runtime, "_default_bases", lambda: [blocker / "x", fallback])
    paths = runtime.resolve("profile-1")
    assert paths.directory.parent == fallback
    assert oct(fallback.stat().st_mode & 0o777) == oct(0o700)
    assert "profile-1" not in str(paths.directory)


def test_default_bases_prefer_platformdirs_then_tempdir() -> None:
    bases = runtime._default_bases()
    assert len(bases) == 2 and bases[-1].name.startswith("concord")
