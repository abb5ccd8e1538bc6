"""The CLI: exit codes and one-line messages for bad input, `data list`, `data show`, `--help`.

The bad-input cases run `python -m genclf` in a subprocess, as a user would; the rest call
`genclf.cli.main` in-process (each subprocess pays the torch import that the parser needs).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def empty_data_dir(data_dir):
    """No mnist/cifar here; fashion-mnist comes from the Debian files."""
    return data_dir


def genclf(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genclf", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("genclf: error: ")
    return lines[0]


def main(capsys, *argv: str) -> tuple[int, str, str]:
    from genclf.cli import main as cli_main

    try:
        rc = cli_main(list(argv))
    except SystemExit as e:  # argparse: --help and usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- bad input: exit 2, one line


def test_unknown_dataset():
    line = _one_error_line(genclf("data", "show", "nope"))
    assert "'nope'" in line
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "digits", "folder:PATH"):
        assert name in line


def test_bad_flag_value():
    line = _one_error_line(genclf("features", "--split", "nope"))
    assert "--split" in line and "'nope'" in line
    for split in ("train", "val", "pool", "test"):
        assert split in line


def test_missing_folder():
    line = _one_error_line(genclf("data", "show", "folder:/nonexistent"))
    assert "/nonexistent" in line and "one subfolder of images per class" in line


def test_missing_dataset_names_both_remedies(capsys, empty_data_dir):
    rc, out, err = main(capsys, "data", "show", "cifar10")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "genclf data fetch cifar10" in err and str(empty_data_dir / "cifar-10-batches-py") in err
    assert "data_batch_1" in err and "batches.meta" in err


@pytest.mark.parametrize(
    "argv, expect",
    [
        ((), "required"),
        (("data",), "required"),
        (("data", "fetch", "digits"), "invalid choice"),
        (("cache", "empty"), "invalid choice"),
        (("data", "list", "--nope"), "unrecognized arguments"),
        (("train", "--backbone", "ddpm", "--epochs", "many"), "invalid float value"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, expect):
    rc, out, err = main(capsys, *argv)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and expect in err


# ---------------------------------------------------------------- data list / show


def test_data_list_shows_fashion_mnist_present():
    p = genclf("data", "list")
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()[1:]}
    assert rows["fashion-mnist"].split()[1:4] == ["yes", "60000", "10000"]
    assert rows["digits"].split()[1] == "yes"
    assert rows["mnist"].split()[1] == "no" and "genclf data fetch mnist" in rows["mnist"]
    assert rows["cifar100"].split()[1] == "no" and "cifar-100-python" in rows["cifar100"]
    assert "folder:PATH" in rows


def test_data_show_fashion_mnist_with_grid(tmp_path):
    png = tmp_path / "grid.png"
    p = genclf("data", "show", "fashion-mnist", "--grid", str(png))
    assert p.returncode == 0, p.stderr
    assert "(1, 28, 28)" in p.stdout and "fingerprint" in p.stdout
    assert "train 60000 = pool 55000 + val 5000; test 10000" in p.stdout
    ankle = next(line for line in p.stdout.splitlines() if "Ankle boot" in line)
    assert ankle.split()[-3:] == ["6000", "500", "1000"]
    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.size == ((8 * 30 + 2) * 3, (10 * 30 + 2) * 3)  # 8 per class, 10 classes, 2px pad, x3


def test_data_show_folder_reports_skipped_and_draws_one_row_per_class(capsys, tmp_path):
    root = tmp_path / "imgs"
    for cls, n in (("a", 3), ("b", 9)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8), 25 * i, np.uint8)).save(root / cls / f"{i}.png")
    (root / "a" / "bad.png").write_bytes(b"nope")
    png = tmp_path / "grid.png"
    rc, out, err = main(capsys, "data", "show", f"folder:{root}", "--grid", str(png))
    assert rc == 0, err
    assert "skipped      1 unreadable file(s)" in out
    assert "image shape  (1, 8, 8)" in out  # grey 8x8 PNGs stay grey 8x8
    with Image.open(png) as im:  # (8 + 2) px per image, 8 columns, 2 rows although "a" has only 2 train images
        assert im.size == ((8 * 10 + 2) * 3, (2 * 10 + 2) * 3)


# ---------------------------------------------------------------- --help everywhere


@pytest.mark.parametrize(
    "argv",
    [(), ("data",), ("data", "list"), ("data", "show"), ("data", "fetch"), ("cache",), ("train",), ("features",), ("eval",)],
    ids=lambda a: " ".join(a) or "genclf",
)
def test_help_everywhere(capsys, argv):
    rc, out, err = main(capsys, *argv, "--help")
    assert rc == 0 and err == ""
    assert out.startswith("usage: genclf" + "".join(f" {a}" for a in argv))
    if argv in ((), ("train",), ("features",), ("eval",)):
        assert "--threads N" in out
    if argv in (("features",), ("eval",)):
        assert "fashion-mnist/ddpm" in " ".join(out.split())  # another dataset's backbone, by name
