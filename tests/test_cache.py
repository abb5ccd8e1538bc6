"""The content-addressed cache: hits, misses, killed writers, racing processes, corruption, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genclf import cache as cache_mod
from genclf.cache import Cache, make_key

REPO = Path(__file__).resolve().parents[1]
PARTS = {
    "dataset": "fashion-mnist",
    "data_fingerprint": "abc123",
    "config": {"dim": 8, "lr": 0.001},
    "seed": 0,
    "t": 50,
    "blocks": ["down.0", "mid"],
}


class Counter:
    def __init__(self, value: float = 1.0):
        self.calls, self.value = 0, value

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"x": np.full((4, 3), self.value, np.float32), "y": np.arange(4)}


@pytest.fixture
def store(tmp_path) -> Cache:
    return Cache(tmp_path / "store")


def _data_file(store: Cache, kind: str = "features", parts: dict = PARTS) -> Path:
    return store.entry_dir(kind, make_key(kind, parts)) / "data.safetensors"


def test_hit_after_miss(store):
    compute = Counter()
    first = store.get_or_compute("features", PARTS, compute)
    again = store.get_or_compute("features", PARTS, compute)
    assert compute.calls == 1
    np.testing.assert_array_equal(again["x"], first["x"])
    np.testing.assert_array_equal(again["y"], np.arange(4))
    meta = json.loads((_data_file(store).parent / "meta.json").read_text())  # readable by a person
    assert meta["parts"] == PARTS and meta["kind"] == "features" and len(meta["sha256"]) == 64
    assert meta["arrays"]["x"] == {"shape": [4, 3], "dtype": "float32"}
    assert Cache(store.root).get_or_compute("features", dict(reversed(PARTS.items())), compute)["x"].shape == (4, 3)
    assert compute.calls == 1  # key order does not matter: canonical JSON


@pytest.mark.parametrize(
    "change",
    [
        {"data_fingerprint": "abc124"},
        {"config": {"dim": 8, "lr": 0.002}},
        {"seed": 1},
        {"t": 51},
        {"t": None},
        {"blocks": ["down.0"]},
        {"blocks": ["mid", "down.0"]},
        {"dataset": "mnist"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_miss_after_changing_a_key_part(store, change):
    compute = Counter()
    store.get_or_compute("features", PARTS, compute)
    store.get_or_compute("features", {**PARTS, **change}, compute)
    assert compute.calls == 2
    store.get_or_compute("features", PARTS, compute)
    assert compute.calls == 2  # the original entry is still there


def test_miss_after_changing_kind_or_code_version(store, monkeypatch):
    compute = Counter()
    store.get_or_compute("features", PARTS, compute)
    store.get_or_compute("projection", PARTS, compute)
    assert compute.calls == 2
    monkeypatch.setattr(cache_mod, "CODE_VERSION", cache_mod.CODE_VERSION + "-next")
    store.get_or_compute("features", PARTS, compute)
    assert compute.calls == 3


# ---------------------------------------------------------------- killed writers

_WRITER = """
import os, sys, time
from pathlib import Path
import numpy as np
from genclf import cache as C

root, stage, marker = sys.argv[1:4]

def stall():  # tell the test where we are, then wait to be killed
    Path(marker).touch()
    time.sleep(120)

if stage == "save":  # killed with data.safetensors written, meta.json not yet
    real = C.save_file
    C.save_file = lambda arrays, path: (real(arrays, path), stall())
elif stage == "publish":  # killed with the temp dir complete, just before os.replace
    C.os.replace = lambda src, dst: stall()

def compute():
    if stage == "compute":
        stall()
    return {"x": np.full((4, 3), 9.0, np.float32), "y": np.arange(4)}

C.Cache(root).get_or_compute("features", {"k": 1}, compute)
"""


@pytest.mark.parametrize("stage", ["compute", "save", "publish"])
def test_writer_killed_mid_write_leaves_nothing_readable(store, tmp_path, stage):
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(store.root), stage, str(marker)], cwd=REPO)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, "writer exited before reaching the kill point"
            assert time.time() < deadline, "writer never reached the kill point"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    key = make_key("features", {"k": 1})
    leftovers = list(store.entry_dir("features", key).parent.glob(".tmp-*")) if stage != "compute" else []
    assert stage == "compute" or leftovers, "the kill should have interrupted a write"
    fresh = Cache(store.root)
    assert fresh.read("features", key) is None and not fresh.has("features", {"k": 1})
    assert fresh.entries() == [] and fresh.du() == {}
    compute = Counter(value=5.0)
    out = fresh.get_or_compute("features", {"k": 1}, compute)  # the lock died with the writer
    assert compute.calls == 1 and (out["x"] == 5.0).all()
    assert not any(p.name.startswith(".tmp-") for p in store.root.rglob("*"))  # the orphan was removed
    assert len(Cache(store.root).entries()) == 1


def test_clear_removes_leftovers_of_dead_writers(store):
    store.get_or_compute("features", PARTS, Counter())
    parent = _data_file(store).parent.parent
    dead = parent / ".tmp-0123456789ab-999999999-xyz"  # no such pid
    live = parent / f".tmp-0123456789ab-{os.getpid()}-xyz"  # a write in progress
    for d in (dead, live):
        d.mkdir()
        (d / "meta.json").write_text("{}")
    assert len(store.entries()) == 1 and store.leftovers() == [dead]
    assert store.clear() == 1
    assert not dead.exists() and live.exists() and store.entries() == []


# ---------------------------------------------------------------- racing processes

_RACER = """
import os, sys, time
from pathlib import Path
import numpy as np
from genclf.cache import Cache

root, counter, ready, go = sys.argv[1:5]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)

def compute():
    with open(counter, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)  # long enough that the other process asks while this one computes
    return {"x": np.arange(1000, dtype=np.float32) * 3}

out = Cache(root).get_or_compute("features", {"race": 1}, compute)
print(float(out["x"].sum()))
"""


def test_two_processes_racing_compute_once(store, tmp_path):
    counter, go = tmp_path / "computations.txt", tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(store.root), str(counter), str(r), str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    try:
        deadline = time.time() + 60
        while not all(r.exists() for r in ready):
            assert time.time() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.01)
        go.touch()
        outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0]
    assert len(counter.read_text().splitlines()) == 1
    assert outs == [str(float(np.arange(1000).sum() * 3))] * 2


# ---------------------------------------------------------------- corruption


def _flip_last_bytes(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-4:] = bytes(b ^ 0xFF for b in raw[-4:])  # inside the tensor bytes: still a valid safetensors file
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta", "no-sha"])
@pytest.mark.parametrize("same_instance", [True, False], ids=["same", "fresh"])
def test_corrupt_entry_is_recomputed(store, damage, same_instance):
    compute = Counter(value=2.0)
    store.get_or_compute("features", PARTS, compute)
    store.get_or_compute("features", PARTS, compute)  # a verified hit
    f = _data_file(store)
    if damage == "flip":
        _flip_last_bytes(f)
    elif damage == "truncate":
        f.write_bytes(f.read_bytes()[:-7])
    elif damage == "meta":
        (f.parent / "meta.json").write_text("{not json")
    else:
        meta = json.loads((f.parent / "meta.json").read_text())
        del meta["sha256"]
        (f.parent / "meta.json").write_text(json.dumps(meta))
    c = store if same_instance else Cache(store.root)
    assert c.read("features", make_key("features", PARTS)) is None  # never served
    out = c.get_or_compute("features", PARTS, compute)
    assert compute.calls == 2
    assert (out["x"] == 2.0).all()
    assert (Cache(store.root).read("features", make_key("features", PARTS))["x"] == 2.0).all()


# ---------------------------------------------------------------- genclf cache ls|du|clear


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from genclf.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_cache_ls_du_clear(capsys):
    c = Cache()  # $GENCLF_CACHE_DIR, a fresh tmp dir: it does not exist yet
    assert _cli(capsys, "cache", "ls") == (0, "", "")
    assert _cli(capsys, "cache", "du")[0] == 0
    c.get_or_compute("features", PARTS, Counter())
    c.get_or_compute("features", {**PARTS, "t": 10}, Counter())
    c.get_or_compute("projection", PARTS, Counter())

    rc, out, _ = _cli(capsys, "cache", "ls")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 3 and sum(line.startswith("features") for line in lines) == 2
    assert "dataset=fashion-mnist" in out and "t=10" in out

    rc, out, _ = _cli(capsys, "cache", "du")
    assert rc == 0 and any(line.split()[:2] == ["features", "2"] for line in out.splitlines())
    assert any(line.split()[:2] == ["projection", "1"] for line in out.splitlines())

    rc, out, err = _cli(capsys, "cache", "clear")
    assert rc == 2 and out == "" and "--yes" in err and len(err.strip().splitlines()) == 1
    assert len(c.entries()) == 3

    rc, out, _ = _cli(capsys, "cache", "clear", "--kind", "projection", "--yes")
    assert rc == 0 and "removed 1 " in out and len(c.entries()) == 2
    rc, out, _ = _cli(capsys, "cache", "clear", "--yes")
    assert rc == 0 and "removed 2 " in out and c.entries() == []
    assert _cli(capsys, "cache", "ls") == (0, "", "")
