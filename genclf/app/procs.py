"""The process plumbing shared by the dashboard's background processes (app/tasks.py and app/jobs.py): a lock file
per record folder, liveness of a child by pid, the tail of its log, and stopping its whole process group."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

POPEN: dict[int, subprocess.Popen] = {}  # reap our own children so they never linger as zombies


@contextlib.contextmanager
def locked(folder: Path):
    """An exclusive flock on `folder`/.lock (created on demand) for the duration of the block."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(nice: int) -> None:
    """Run this process, and what it starts, `nice` steps below the web server.

    os.nice alone is not enough where the kernel shares CPU time out by session first (autogroup, on by default in
    most Linux distributions): a child in a session of its own (the tasks and jobs, so that Cancel can signal
    their process group) then competes as a whole group with the server's session, whatever its nice, and took
    half the CPU from the server while it checked the cache at start. So a session leader sets its group's nice
    too; lowering a priority needs no privilege. Elsewhere (no autogroup, or a child in the server's session,
    whose group must stay as it is) only os.nice applies."""
    os.nice(nice)
    if os.getsid(0) == os.getpid():  # the session, and so the autogroup, is ours alone
        with contextlib.suppress(OSError):
            AUTOGROUP.write_text(str(nice))


def autogroup_nice(pid: int | str = "self") -> int | None:
    """A process's autogroup nice ('/autogroup-12 nice 10' -> 10); None without autogroup (or that process)."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def spawned(proc: subprocess.Popen) -> subprocess.Popen:
    """Remember a child we started, so `alive` asks it, and reap it the moment it ends: a task that finishes while
    no page polls it would otherwise stay a zombie (`<defunct>` in ps) for as long as the server runs."""
    POPEN[proc.pid] = proc
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc


def alive(pid: int, marker: bytes | None = None) -> bool:
    """Is `pid` running (not a zombie)? A child of ours is polled; another process is read from /proc, and with
    `marker` it must also have it in its command line (a recycled pid running something else is not ours)."""
    if pid in POPEN:
        return POPEN[pid].poll() is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes() if marker else b""
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and (marker is None or marker in cmd)


def tail(path: Path, lines: int, n: int) -> str:
    """The last `lines` non-blank lines of a log (progress bars' carriage returns count as line ends), at most `n`
    characters; "" when the file cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])[-n:]


def stop_group(pid: int, is_alive, grace: float = 10.0) -> None:
    """SIGTERM the process group `pid` leads (each child is its own session: pgid == pid), wait up to `grace`
    seconds for `is_alive(pid)` to turn false, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + grace
    while is_alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    if is_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
