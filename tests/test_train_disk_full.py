"""A full disk while a real `genclf train` checkpoints (issue 12, item 6, checkpoint half), in process.

tests/test_train.py checks that the CLI turns safetensors' ENOSPC error into one line; this runs the real
training loop into it: exit 2 with one line, the previous checkpoint kept and readable, nothing half-written
left in the run folder, and the same command afterwards resumes to the weights of an uninterrupted run.
bench/faults.py does the same on a real 40 KB tmpfs when run as root.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from genclf.backbones import checkpoint
from genclf.backbones.checkpoint import read_checkpoint

# digits, 128 images in batches of 32: 4 steps an epoch, a checkpoint at each epoch end
ARGS = ["train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny", "--epochs", "3", "--batch-size", "32",
        "--limit", "128", "--seed", "3"]  # fmt: skip


def _full_at_checkpoint(monkeypatch, nth: int) -> None:
    """The nth checkpoint write meets a full disk: a partial temp file, then what safetensors raises on ENOSPC."""
    real, calls = checkpoint.save_file, [0]

    def save_file(tensors, path, metadata=None):
        calls[0] += 1
        if calls[0] == nth:
            Path(path).write_bytes(b"partial")
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", save_file)


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_the_rerun_ends_identical(tmp_path, monkeypatch, capsys):
    from genclf.cli import main

    assert main([*ARGS, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _full_at_checkpoint(m, 2)  # the end of epoch 2
        capsys.readouterr()
        assert main([*ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and err[-1].startswith("genclf: error: the disk is full"), err
    assert "rerun the same command" in err[-1]
    assert read_checkpoint(out)[1]["step"] == 4  # epoch 1's checkpoint survived, whole
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []  # no temp file left
    assert json.loads((out / "config.json").read_text())["status"] == "training"  # not marked finished
    assert main([*ARGS, "--out", str(out)]) == 0  # space freed: the same command resumes
    a, b = load_file(str(tmp_path / "ref" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
