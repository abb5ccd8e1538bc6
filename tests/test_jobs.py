"""Background training jobs: a detached `genclf train` process, one at a time, progress from train_log.jsonl, cancel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genclf.app import jobs, procs
from genclf.backbones import available
from genclf.errors import GenclfError


def _wait(pred, timeout: float = 240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.status()
        if pred(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"timed out; last status {jobs.status()}; log: {jobs.status().log.read_text()[-2000:]}")


def test_total_steps_matches_the_trainer():
    # digits: 1437 training images
    assert jobs.total_steps("digits", 1, 32, None, None) == 1437 // 32
    assert jobs.total_steps("digits", 2.5, 32, 320, None) == 25
    assert jobs.total_steps("digits", 1, 32, None, 7) == 7
    with pytest.raises(GenclfError, match="fewer than one batch"):
        jobs.total_steps("digits", 1, 64, 50, None)


def test_refusals_name_the_remedy(use_tiny_runs):
    with pytest.raises(GenclfError, match="nothing to train"):
        jobs.start("digits", "pixels")
    with pytest.raises(GenclfError, match="valid presets"):
        jobs.start("digits", "vae", preset="huge")
    with pytest.raises(GenclfError, match="already holds a finished vae"):
        jobs.start("digits", "vae", preset="tiny")  # the tiny run exists and no --force
    assert jobs.status() is None  # nothing was launched


def test_job_runs_detached_reports_progress_and_lands_in_the_picker(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLF_RUNS_DIR", str(tmp_path / "runs"))
    assert "vae" not in available("digits")
    job = jobs.start("digits", "vae", preset="tiny", batch_size=32, max_steps=30, epochs=1)
    assert job.total == 30 and job.state == "running"
    assert jobs.status().id == job.id  # read back from files, as another session or a reload would
    with pytest.raises(GenclfError, match="already running"):
        jobs.start("digits", "gan", preset="tiny", batch_size=32, max_steps=5)
    done = _wait(lambda j: j.state != "running")
    assert done.state == "done", done.message
    assert done.step == done.total and done.fraction == 1.0 and done.losses
    assert "vae" in available("digits")  # the sidebar's backbone picker lists it now
    assert (tmp_path / "runs" / "digits" / "vae" / "samples.png").is_file()


def test_cancel_stops_the_process_group(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLF_RUNS_DIR", str(tmp_path / "runs"))
    job = jobs.start("digits", "gan", preset="tiny", batch_size=32, epochs=1000)
    try:
        _wait(lambda j: j.step > 0 or j.state != "running")
        # the training (not its sh) runs below the web server: its nice, and its session's autogroup where there is one
        train = [p for p in Path("/proc").glob("[0-9]*") if _pgid(p.name) == job.pid and b"genclf\x00train" in _cmd(p)]
        assert train, "the job's training process is not in its process group"
        for proc in train:
            assert os.getpriority(os.PRIO_PROCESS, int(proc.name)) == jobs.JOB_NICE
            group = procs.autogroup_nice(proc.name)
            assert group is None or group == jobs.JOB_NICE, group
    except BaseException:
        jobs.cancel()  # a failed check never leaves a 1000-epoch run behind
        raise
    out = jobs.cancel()
    assert out.state == "cancelled" and "resume" in out.message
    assert not jobs._alive(job.pid)
    assert jobs.status().state == "cancelled"
    jobs.start("digits", "vae", preset="tiny", batch_size=32, max_steps=2)  # a new job may start now
    assert _wait(lambda j: j.state != "running").state == "done"


def test_failed_job_reports_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLF_RUNS_DIR", str(tmp_path / "runs"))
    out = tmp_path / "runs" / "digits" / "vae"
    out.mkdir(parents=True)
    (out / "config.json").write_text('{"backbone": "vae", "config": {"latent": 999}}')
    (out / "checkpoint.json").write_text("{}")  # a resume with a different config: genclf train refuses
    jobs.start("digits", "vae", preset="tiny", batch_size=32, max_steps=2)
    job = _wait(lambda j: j.state != "running")
    assert job.state == "failed" and "different config" in job.message


def _pgid(pid: str) -> int | None:
    try:
        return os.getpgid(int(pid))
    except OSError:
        return None


def _cmd(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


PRIORITY = (
    "import os, sys; from genclf.app import procs; procs.lower_priority(int(sys.argv[1]));"
    " print(os.nice(0), procs.autogroup_nice())"
)


def _child(nice: int, own_session: bool) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", PRIORITY, str(nice)], capture_output=True, text=True, check=True,
                         start_new_session=own_session).stdout.split()  # fmt: skip
    return int(out[0]), out[1]


@pytest.mark.parametrize("own_session", [True, False])
def test_lower_priority_also_lowers_a_session_of_its_own(own_session):
    """A task in its own session (so that Cancel can signal its group) would otherwise compete as a whole group with
    the web server under autogroup, whatever its nice; a child in the server's session must leave the group alone."""
    nice, group = _child(7, own_session)
    assert nice == os.nice(0) + 7
    if own_session:
        # a new session has an autogroup of its own only where the kernel gives it one (autogroup on, no cpu cgroup
        # above it); this shows what a new session gets here when nothing is lowered
        _, fresh = _child(0, True)
        assert group == ("None" if fresh == "None" else "7")
    else:  # the server's group (which the test's process shares) is left as it is, whatever it is
        assert group == str(procs.autogroup_nice())


def test_a_finished_child_is_reaped_without_being_asked():
    """A task that ends while no page polls it must not stay a zombie for as long as the server runs."""
    proc = procs.spawned(subprocess.Popen([sys.executable, "-c", "pass"]))
    deadline = time.time() + 30
    while Path(f"/proc/{proc.pid}").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{proc.pid}").exists(), "the finished child is still in the process table"
    assert proc.returncode == 0 and not procs.alive(proc.pid)
