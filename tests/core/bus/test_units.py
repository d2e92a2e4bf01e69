"""Unit tests: framing, data encoding, the leader lock and its epoch file, runtime paths."""

from __future__ import annotations

import asyncio
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from core.bus import DataCloneError
from core.bus import _frames as F
from core.bus._lock import LeaderLock
from core.bus._runtime import resolve, scope_key


def test_frame_reader_splits_and_reassembles() -> None:
    frames = [F.frame(F.Ack(epoch=1, version=1, message_id=i, seq=i)) for i in range(3)]
    stream = b"".join(frames)
    reader = F.FrameReader()
    out: list[bytes] = []
    for i in range(0, len(stream), 7):  # byte dribble
        out.extend(reader.feed(stream[i : i + 7]))
    assert [F.decode_from_hub(p).message_id for p in out] == [0, 1, 2]  # type: ignore[union-attr]


@pytest.mark.parametrize("length", [0, F.MAX_FRAME + 1, 0xFFFFFFFF])
def test_frame_reader_rejects_bad_lengths(length: int) -> None:
    with pytest.raises(F.FrameError):
        F.FrameReader().feed(struct.pack(">I", length) + b"{}")


def test_frame_reader_accepts_the_maximum() -> None:
    body = b'"' + b"x" * (F.MAX_FRAME - 2) + b'"'
    assert F.FrameReader().feed(struct.pack(">I", len(body)) + body) == [body]


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -1, 2**70, 1.5, -0.0, "", "ünïcødé \u2603", [], {}, {"a": [1, {"b": None}]}],
)
def test_encode_data_round_trips(value: object) -> None:
    raw, copy = F.encode_data(value)
    assert copy == value and F.decode_json(raw) == value
    if isinstance(value, list | dict):
        assert copy is not value


@pytest.mark.parametrize("value", [math.nan, -math.inf, (1,), {1}, b"", {2: 1}, object()])
def test_encode_data_rejects(value: object) -> None:
    with pytest.raises(DataCloneError):
        F.encode_data(value)


def test_message_frame_splice_is_valid_json() -> None:
    body = F.post_body(F.encode_json("ch"), 7, 123, b'{"k":[1]}')
    payload = b'{"e":3,' + body
    post = F.decode_to_hub(payload)
    assert isinstance(post, F.Post)
    assert (post.channel, post.message_id, post.time) == ("ch", 7, 123)
    stamped = b'{"s":9,"src":"m-1",' + payload[1:]
    msg = F.decode_from_hub(stamped)
    assert isinstance(msg, F.Msg) and (msg.seq, msg.src, msg.epoch) == (9, "m-1", 3)
    assert F.decode_json(msg.data) == {"k": [1]}


def test_lock_is_exclusive_and_epochs_grow(tmp_path: Path) -> None:
    a = LeaderLock(tmp_path / "lock", tmp_path / "epoch")
    b = LeaderLock(tmp_path / "lock", tmp_path / "epoch")
    assert a.try_acquire() and not b.try_acquire()
    assert a.bump_epoch() == 1 and a.bump_epoch() == 2
    with pytest.raises(RuntimeError):
        b.bump_epoch()
    a.release()
    assert b.try_acquire() and not a.try_acquire()
    assert b.bump_epoch() == 3
    assert b.bump_epoch(floor=10) == 11
    (tmp_path / "epoch").write_text("garbage")
    assert b.bump_epoch() == 1
    b.close()
    a.close()
    assert oct((tmp_path / "lock").stat().st_mode & 0o777) == oct(0o600)


async def test_the_kernel_releases_the_lock_of_a_killed_process(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from core.bus._lock import LeaderLock\n"
        f"l = LeaderLock(__import__('pathlib').Path({str(tmp_path / 'lock')!r}), None)\n"
        "assert l.try_acquire(); print('held', flush=True); time.sleep(60)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[3]),
    )
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"held\n"
    lock = LeaderLock(tmp_path / "lock", tmp_path / "epoch")
    assert not lock.try_acquire()
    proc.kill()
    await proc.wait()
    assert lock.try_acquire()  # released by the kernel at death, no timeout involved
    lock.close()


def test_forked_child_does_not_keep_or_release_the_lock(tmp_path: Path) -> None:
    lock = LeaderLock(tmp_path / "lock", tmp_path / "epoch")
    assert lock.try_acquire()
    pid = os.fork()
    if pid == 0:  # the child forgets the lock without releasing the parent's
        os._exit(0 if not lock.held else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    other = LeaderLock(tmp_path / "lock", tmp_path / "epoch")
    assert lock.held and not other.try_acquire()
    lock.close()
    other.close()


def test_scope_paths(tmp_path: Path) -> None:
    p = resolve("alice@https://chat.example", tmp_path)
    assert p.directory == tmp_path / scope_key("alice@https://chat.example")
    assert "alice" not in str(p.directory)
    assert resolve("bob", tmp_path).directory != p.directory
    assert len(scope_key("x")) == 20
