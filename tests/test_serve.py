"""genclf.app.serve: the launcher the browser tests and bench/dashboard.py share."""

import os

import psutil
import pytest

from genclf.app import serve


def test_a_server_that_does_not_answer_in_time_is_reported_and_stopped(tmp_path):
    log = tmp_path / "server.log"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    env = {**os.environ, "GENCLF_CACHE_DIR": str(tmp_path)}
    with (
        pytest.raises(serve.NotStarted, match="did not start within"),
        serve.dashboard(env, launcher=False, log=log, timeout_s=0.2),
    ):
        pytest.fail("a server cannot be up 0.2 s after its start")
    assert not {p.pid for p in psutil.Process().children(recursive=True)} - before  # nothing left running
    assert log.exists()


def test_the_command_is_what_make_app_runs_or_plain_streamlit():
    assert serve.command(8501)[1:2] == ["app.py"]
    assert serve.command(8501, launcher=False)[1:5] == ["-m", "streamlit", "run", "app.py"]
    assert "8501" in serve.command(8501)


def test_the_dashboard_runs_no_full_collection_after_each_script_run():
    """Streamlit's default runs gc.collect(2) after every script run: 0.2 s holding the GIL with the server's heap
    (torch, diffusers, the features), so ten sessions finishing together stalled every other session and the health
    check for 1-2.5 s. The project's .streamlit/config.toml turns it off; ui/common.preload freezes the long-lived
    heap instead."""
    import subprocess
    import sys

    code = "from streamlit import config; print(config.get_option('runner.postScriptGC'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=serve.ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
