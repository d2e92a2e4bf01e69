"""Benchmark: the desktop UI under load (offscreen Qt, a real server in its own process).

1. A burst of 1,000 remote changes (another account writes as fast as the server takes them):
   repaints of the main window's views per second of burst, and the longest event-loop stall
   (a 5 ms Qt timer's largest gap). Targets: <= ~60 repaints/s, stall <= 50 ms.
2. Cold start to a painted main window with 10,000 cached conversations (a fresh process).
   Target < 1 s.
3. Memory per extra window (10 more main windows). Target < 10 MB.

    python tests/bench/ui.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PySide6.QtCore import QEvent, QObject, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

PW = "bench-pw"
BURST = 1000

WRITER = """
import asyncio, sys, uuid, httpx
async def main(url, cids, n):
    async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=30) as c:
        r = await c.post("/auth/token", json={"username": "bob", "password": sys.argv[4]})
        h = {"Authorization": "Bearer " + r.json()["access_token"]}
        sem = asyncio.Semaphore(8)
        async def one(i):
            async with sem:
                cid = cids[i % len(cids)]
                await c.post(f"/conversations/{cid}/messages", headers=h,
                             json={"id": str(uuid.uuid4()), "body": f"burst {i}"})
        await asyncio.gather(*(one(i) for i in range(n)))
asyncio.run(main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])))
"""

COLD = """
import os, sys, time
t0 = time.perf_counter()
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
import asyncio
from desktop.loop import run_qt
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
async def main():
    from core import Client, ClientConfig
    from core.bus import PreferenceStore
    from desktop.manager import WindowManager
    from desktop.profile import Profile
    from ui.bridge import ClientBridge
    tmp = sys.argv[1]
    cfg = ClientConfig("http://127.0.0.1:9", tmp + "/data", "alice", runtime_dir=tmp + "/run",
                       sync=False)
    client = await Client.open(cfg)
    painted = asyncio.get_running_loop().create_future()
    class Spy(QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QEvent.Type.Paint and not painted.done():
                painted.set_result(time.perf_counter())
            return False
    from pathlib import Path
    profile = Profile("bench", None, "alice", Path(tmp) / "p", Path(tmp) / "c")
    os.makedirs(tmp + "/c", exist_ok=True)
    manager = WindowManager(app, client, ClientBridge(client), PreferenceStore({}), profile,
                            lambda: None)
    spy = Spy()
    win = manager.open_main_window()
    win.list_view.viewport().installEventFilter(spy)
    t = await asyncio.wait_for(painted, 30)
    print(f"{(t - t0) * 1000:.0f} {win.list_view.model().rowCount()}")
    await client.close()
run_qt(main)
"""


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.paints: list[float] = []

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints.append(time.perf_counter())
        return False


class StallMeter:
    """The largest gap between ticks of a 5 ms timer: how long the loop was busy at once."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.last = time.perf_counter()
        self.max_gap = 0.0
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0
        self.timer.start()


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def burst_and_memory(tmp: Path) -> dict[str, float]:
    from e2e import setup_users
    from server_fanout import free_port, wait_http

    from core import Client, ClientConfig
    from core.bus import PreferenceStore
    from desktop.manager import WindowManager
    from desktop.profile import Profile
    from ui.bridge import ClientBridge

    (tmp / "srv").mkdir(parents=True)
    await setup_users(tmp / "srv", ["alice", "bob"])
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp / "srv"),
        "--log-level",
        "warning",
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    out: dict[str, float] = {}
    try:
        await wait_http(f"{url}/api/v1/health")
        bob = await Client.open(ClientConfig(url, tmp / "bob", "bob", PW, runtime_dir=tmp / "r"))
        cids = [(await bob.create_conversation(f"team {i}", ["alice"])).id for i in range(50)]
        await bob.wait_synced(30)
        await bob.close()
        alice = await Client.open(
            ClientConfig(url, tmp / "alice", "alice", PW, runtime_dir=tmp / "r")
        )
        for _ in range(1000):
            if len(alice.conversations()) == 50:
                break
            await asyncio.sleep(0.01)
        app = QApplication.instance()
        profile = Profile("bench", url, "alice", tmp / "p", tmp / "c")
        (tmp / "c").mkdir()
        bridge = ClientBridge(alice)
        manager = WindowManager(app, alice, bridge, PreferenceStore({}), profile, lambda: None)
        window = manager.open_main_window(cids[0])
        counter = PaintCounter()
        window.list_view.viewport().installEventFilter(counter)
        for child in window.pane.findChildren(QObject):
            if hasattr(child, "viewport"):
                child.viewport().installEventFilter(counter)
        await asyncio.sleep(0.5)
        applied: list[float] = []
        alice.events.messages_added.connect(lambda cid, msgs: applied.append(time.perf_counter()))
        meter = StallMeter()
        counter.paints.clear()
        meter.start()
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, url, ",".join(cids), str(BURST), PW, cwd=ROOT
        )
        await writer.wait()
        await asyncio.sleep(0.5)  # the tail of the burst reaches the UI
        meter.timer.stop()
        first, last = applied[0], applied[-1]
        during = [t for t in counter.paints if first <= t <= last + 0.05]
        duration = max(last - first, 1e-3)
        out.update(
            burst_s=duration,
            paints=len(during),
            per_s=len(during) / duration,
            stall_ms=meter.max_gap * 1000,
            batches=len(applied),
            unread=alice.total_unread(),
        )

        before = rss_kib()
        extra = [manager.open_main_window(cids[i]) for i in range(1, 11)]
        await asyncio.sleep(0.5)
        out["mem_per_window_mb"] = (rss_kib() - before) / 10 / 1024
        for w in [*extra, window]:
            w.close()
        bridge.close()
        await alice.close()
    finally:
        proc.terminate()
        await proc.wait()
    return out


def cold_start(tmp: Path, n: int = 10_000) -> list[tuple[float, int]]:
    import asyncio as aio

    from core import ClientConfig
    from core import protocol as p
    from core.store import LocalStore

    cfg = ClientConfig(
        "http://127.0.0.1:9", tmp / "data", "alice", runtime_dir=tmp / "run", sync=False
    )
    store = LocalStore(Path(cfg.data_dir) / "profiles" / cfg.profile_key / "cache.db")
    convs = [
        p.Conversation(
            id=f"00000000-0000-4000-8000-{i:012d}",
            title=f"Conversation {i}",
            pinned=i % 50 == 0,
            version=1,
            creator="alice",
            members=["alice"],
            created_at=i,
            updated_at=i,
            message_count=i % 5,
            read_seq=0,
            unread=i % 5,
        )
        for i in range(n)
    ]
    store.apply_snapshot(p.Snapshot(epoch=1, head=n, conversations=convs))
    store.close()
    del aio
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", COLD, str(tmp)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        wall = (time.perf_counter() - t0) * 1000
        if res.returncode != 0 or len(res.stdout.split()) < 2:
            raise RuntimeError(f"cold start run failed: {res.stderr[-2000:]}")
        ms, rows = res.stdout.split()[-2:]
        runs.append((float(ms), int(rows), wall))
    return runs


def main() -> None:
    from desktop.loop import run_qt

    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    tmp = Path(tempfile.mkdtemp(prefix="concord-uibench-"))
    burst = run_qt(lambda: burst_and_memory(tmp / "burst"))
    (tmp / "cold").mkdir()
    cold = cold_start(tmp / "cold")
    del app
    print("\nUI benchmark (offscreen Qt; server in its own process)")
    print(
        f"burst of {BURST} remote changes: {burst['burst_s']:.2f} s, "
        f"{burst['paints']:.0f} repaints = {burst['per_s']:.0f} repaints/s "
        f"(target <= ~60), longest loop stall {burst['stall_ms']:.1f} ms (target <= 50), "
        f"{burst['batches']:.0f} message batches, unread after {burst['unread']:.0f}"
    )
    best = min(c[0] for c in cold)
    print(
        f"cold start to painted main window, 10,000 cached conversations: "
        f"{best:.0f} ms from interpreter start (runs: "
        f"{', '.join(f'{c[0]:.0f}' for c in cold)} ms; rows {cold[0][1]}; target < 1000)"
    )
    print(f"memory per extra main window: {burst['mem_per_window_mb']:.2f} MB (target < 10)")


if __name__ == "__main__":
    main()
