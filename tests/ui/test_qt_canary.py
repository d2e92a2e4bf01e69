"""Canary for the PySide6 6.12.0 / CPython 3.11 refcount bug.

That build drops one reference to ``True`` per ``Signal.emit()`` carrying a bool and aborts the
process (``Fatal Python error: bool_dealloc``) after some thousands. The dependency pin keeps it
out; this test makes a future bad wheel fail CI instead of users. It runs the emits in a child
process so an abort is reported as a failure, not as a crashed test session.
"""

import subprocess
import sys
import textwrap

EMITS = 20_000

CHILD = textwrap.dedent(
    f"""
    import sys
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    class Emitter(QObject):
        flag = Signal(bool)
        count = Signal(int)

    app = QCoreApplication([])
    e = Emitter()
    seen = []
    e.flag.connect(seen.append)
    e.count.connect(seen.append)
    before = sys.getrefcount(True)
    for i in range({EMITS}):
        e.flag.emit(True)
        e.count.emit(i)
    after = sys.getrefcount(True)
    assert len(seen) == {2 * EMITS}, len(seen)
    # Immortal objects (3.12+) report a huge constant; on 3.11 the count must not fall.
    assert after >= before - 100, (before, after)
    print("ok", before, after)
    """
)


def test_twenty_thousand_signal_emits_do_not_crash() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")
