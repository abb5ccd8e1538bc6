"""Start the dashboard as a child process and wait until it answers: the one launcher that the browser tests
(tests/conftest.py) and `bench/dashboard.py` share.

    with serve.dashboard(env) as (url, t0):   # t0: time.perf_counter() just before the process started
        ...                                   # the server is stopped when the block ends
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: app.py and ui/


class NotStarted(RuntimeError):
    """The server exited, or did not answer its health check in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port: int, launcher: bool = True, script: str = "app.py") -> list[str]:
    """`python app.py` (what `make app` runs: it also preloads data and models in the launcher) or, with
    launcher=False, plain `streamlit run <script>` (another script: bench/floor_app.py)."""
    entry = ["app.py"] if launcher else ["-m", "streamlit", "run", script]
    return [sys.executable, *entry, "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip


def healthy(url: str, timeout_s: float = 2) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout_s).status == 200
    except OSError:
        return False


@contextlib.contextmanager
def dashboard(
    env: dict[str, str], *, launcher: bool = True, log: Path | None = None, timeout_s: float = 300, script: str = "app.py"
) -> Iterator[tuple[str, float]]:
    """Run the dashboard with environment `env` on a free 127.0.0.1 port; yields (url, t0) once /_stcore/health
    answers. Raises NotStarted if it exits or stays silent for timeout_s. Its output goes to `log` (a temporary
    file when None)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "w+b") if log else tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command(port, launcher, script), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while not healthy(url):
                if proc.poll() is not None or time.perf_counter() - t0 > timeout_s:
                    out.seek(0)
                    tail = out.read()[-2000:].decode(errors="replace")
                    raise NotStarted(f"the dashboard did not start within {timeout_s:.0f} s: {tail}")
                time.sleep(0.1)
            yield url, t0
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
