"""Hostile input to the CLI: every case exits 2 with one line that says what to do, never a traceback, and nothing
that was finished is rewritten. Runs `genclf.cli.main` in-process on `digits` and tiny folders of 8x8 images."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def one_line(rc: int, out: str, err: str, pattern: str) -> str:
    """The verb failed with exit 2 and printed exactly one error line matching `pattern` (and nothing on stdout)."""
    assert rc == 2 and out == "", (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genclf: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def small_folder(tmp_path) -> str:
    """folder:PATH with 3 classes x 4 grey 8x8 images: 9 train (3 per class, the rest held out), so an empty
    validation split (10% of 9, rounded down) and fewer than 32 train images."""
    root = tmp_path / "imgs"
    for c, cls in enumerate("abc"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            img = np.random.default_rng(10 * c + i).integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return f"folder:{root}"


# ---------------------------------------------------------------- 1. --t auto where t is taken as given


@pytest.mark.parametrize("verb", [("sweep-blocks", "--backbone", "pixels"), ("features", "--backbone", "ddpm")])
def test_t_auto_is_refused_where_t_is_taken_as_given(run, verb):
    one_line(*run(*verb, "--dataset", "digits", "--t", "auto"), r"argument --t: 'auto' is not accepted here.*0\.\.999")


def test_check_t_refuses_what_is_no_timestep():
    from genclf.backbones import get
    from genclf.errors import GenclfError

    bb = get("ddpm").from_preset("tiny", (1, 8, 8))
    with pytest.raises(GenclfError, match=r"t='auto' is not a timestep; pass a whole number 0\.\.999"):
        bb.check_t("auto")
    assert bb.check_t(50) == 50


# ---------------------------------------------------------------- 2. training on fewer than 32 images


@pytest.mark.parametrize("backbone", ["vae", "simclr"])
def test_training_on_a_folder_of_fewer_than_32_images_writes_its_samples(run, small_folder, tmp_path, backbone):
    out = tmp_path / "run"
    rc, stdout, err = run("train", "--dataset", small_folder, "--backbone", backbone, "--preset", "tiny",
                          "--batch-size", "4", "--max-steps", "1", "--out", str(out))  # fmt: skip
    assert rc == 0, err
    with Image.open(out / "samples.png") as im:  # 9 images: vae shows 9 inputs over their 9 reconstructions
        assert im.size[0] == ((9 if backbone == "vae" else 8) * 10 + 2) * 2


# ---------------------------------------------------------------- 3. an empty validation split


@pytest.mark.parametrize(
    "argv",
    [("features", "--backbone", "pixels", "--split", "val"), ("sweep-blocks", "--backbone", "pixels", "--shots", "1")],
    ids=["features", "sweep-blocks"],
)
def test_an_empty_validation_split_is_one_line_with_the_remedy(run, small_folder, argv):
    one_line(*run(*argv, "--dataset", small_folder), r"validation split of folder:.* is empty.*add images to each class")


# ---------------------------------------------------------------- 4. config.json that is JSON but not a run's


@pytest.mark.parametrize("doc", ["[]", '{"config": "x"}', '{"backbone": "vae", "config": [1]}', '"vae"', "null"])
def test_a_config_json_that_is_no_object_is_one_line(run, tmp_path, doc):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(doc)
    one_line(*run("features", "--dataset", "digits", "--backbone", str(folder)), r"config\.json is invalid.*restore it")
    rc, out, err = run("train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny", "--out", str(folder))
    one_line(rc, out, err, r"config\.json is invalid.*restore it, pass --out elsewhere, or delete")
    assert (folder / "config.json").read_text() == doc


def test_a_config_that_does_not_build_its_backbone_is_one_line(run, tmp_path):
    folder = tmp_path / "model"
    from genclf.backbones import get

    get("vae").from_preset("tiny", (1, 8, 8)).save(folder)
    doc = json.loads((folder / "config.json").read_text())
    doc["config"]["latent"] = "many"
    (folder / "config.json").write_text(json.dumps(doc))
    one_line(*run("features", "--dataset", "digits", "--backbone", str(folder)), r"config does not build a vae.*restore it")


# ---------------------------------------------------------------- 5. a cache dir that takes no folders


def test_a_cache_dir_that_takes_no_folders_is_one_line(tmp_path):
    """In a process of its own: in this one, an earlier test may hold the same features in memory, and then nothing
    is written at all."""
    import os
    import subprocess
    import sys

    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    p = subprocess.run([sys.executable, "-m", "genclf", "features", "--dataset", "digits", "--backbone", "pixels",
                        "--split", "test", "--limit", "20"], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "GENCLF_CACHE_DIR": "/proc"}, timeout=120)  # fmt: skip
    one_line(p.returncode, p.stdout, p.stderr, r"cannot write the cache /proc .*set GENCLF_CACHE_DIR")


# ---------------------------------------------------------------- 6. a finished run is never rewritten


def test_a_finished_run_is_never_rewritten_by_a_rerun(run, tmp_path):
    out = tmp_path / "vae"
    train = ("train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny", "--batch-size", "64",
             "--max-steps", "2", "--out", str(out))  # fmt: skip
    assert run(*train)[0] == 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    line = one_line(*run(*train, "--seed", "7", "--lr", "0.003"), "holds a finished run with other settings")
    assert "--seed 0 (this command: 7)" in line and "--lr the backbone's default (this command: 0.003)" in line
    assert "--out elsewhere" in line and f"delete {out}" in line
    one_line(*run(*train, "--lr", "0.003"), r"--lr .*this command stops at step 2 and the run has 2")
    one_line(*run(*train, "--max-steps", "3", "--seed", "7"), r"--seed 0 \(this command: 7\)")
    rc, stdout, _ = run(*train)  # the same command: nothing to do, nothing touched
    assert rc == 0 and "already holds this finished run" in stdout
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"} == files
    # more steps (README: "pass more epochs") go on from the checkpoint, as a resume does
    assert run(*train, "--max-steps", "3")[0] == 0
    doc = json.loads((out / "config.json").read_text())
    assert doc["steps"] == 3 and doc["train"]["max_steps"] == 3 and doc["train"]["seed"] == 0
    # --force does retrain, from scratch, with the new settings
    assert run(*train, "--seed", "7", "--force")[0] == 0
    doc = json.loads((out / "config.json").read_text())
    assert doc["train"]["seed"] == 7 and doc["steps"] == 2 and doc["status"] == "done"
    assert (out / "command.txt").read_text().count("\n") == 1


def test_a_finished_run_without_its_checkpoint_is_left_alone(run, tmp_path):
    """A shipped run keeps no checkpoint (scripts/train_pretrained.sh reruns them): the same command is nothing to do,
    other settings are refused, and more steps have nothing to go on from."""
    out = tmp_path / "vae"
    train = ("train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny", "--batch-size", "64",
             "--max-steps", "2", "--out", str(out))  # fmt: skip
    assert run(*train)[0] == 0
    for name in ("checkpoint.safetensors", "checkpoint.json"):
        (out / name).unlink(missing_ok=True)
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    rc, stdout, _ = run(*train)
    assert rc == 0 and "already holds this finished run" in stdout
    one_line(*run(*train, "--seed", "7"), r"--seed 0 \(this command: 7\)")
    one_line(*run(*train, "--max-steps", "3"), "already holds a finished model")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"} == files


# ---------------------------------------------------------------- 7. model.safetensors carries a digest


def _tiny_vae(folder: Path):
    from genclf.backbones import get

    return get("vae").from_preset("tiny", (1, 8, 8)).save(folder)


def test_a_model_file_with_flipped_bytes_is_refused(tmp_path):
    from safetensors import safe_open

    from genclf.backbones.io import load_backbone
    from genclf.errors import GenclfError

    folder = _tiny_vae(tmp_path / "vae")
    weights = folder / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert len(f.metadata()["digest"]) == 64
    load_backbone(folder)
    raw = bytearray(weights.read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")
    raw[header + 100 : header + 104] = bytes(b ^ 0x55 for b in raw[header + 100 : header + 104])  # inside the tensors
    weights.write_bytes(bytes(raw))
    with pytest.raises(GenclfError, match=r"do not match the digest written with them; restore the file, or delete it"):
        load_backbone(folder)


def test_non_finite_weights_are_refused(tmp_path):
    from genclf.backbones import get
    from genclf.backbones.io import load_backbone
    from genclf.errors import GenclfError

    bb = get("vae").from_preset("tiny", (1, 8, 8))
    with torch.no_grad():
        next(bb.net.parameters())[0].fill_(float("nan"))
    bb.save(tmp_path / "vae")  # its digest matches: the NaN was saved, not damaged
    with pytest.raises(GenclfError, match=r"non-finite weights \(NaN or inf in net\."):
        load_backbone(tmp_path / "vae")


def test_model_files_without_a_digest_still_load_and_the_check_is_cheap(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from genclf.backbones.checkpoint import digest
    from genclf.backbones.io import PRETRAINED, load_backbone, read_weights

    folder = _tiny_vae(tmp_path / "vae")  # as an earlier genclf wrote it: no metadata
    save_file(load_file(str(folder / "model.safetensors")), str(folder / "model.safetensors"))
    load_backbone(folder)
    shipped = sorted(PRETRAINED.glob("*/*/model.safetensors"))
    assert shipped
    for w in shipped:  # the shipped models have no digest and load as they are; the files stay untouched
        with safe_open(str(w), "pt") as f:
            assert "digest" not in (f.metadata() or {})
        read_weights(w)
    tensors = load_file(str(max(shipped, key=lambda p: p.stat().st_size)))  # the largest, a few MB
    best = min(_seconds(lambda: digest(tensors)) for _ in range(3))
    assert best < 0.1, f"the digest of the largest shipped model took {best:.3f} s"


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---------------------------------------------------------------- 8. repeated values in list options

REPEATS = [
    (("eval", "--backbone", "pixels", "--shots", "5,5,5"), "argument --shots: 5 is repeated"),
    (("eval", "--backbone", "pixels", "--head", "logreg,logreg"), "argument --head: logreg is repeated"),
    (("eval", "--backbone", "pixels,pixels"), "argument --backbone: pixels is repeated"),
    (("eval", "--backbone", "pixels", "--t", "10,10"), "argument --t: 10 is repeated"),
    (("sweep-t", "--grid", "5,5"), "argument --grid: 5 is repeated"),
    (("sweep-blocks", "--backbone", "pixels", "--blocks", "pixels", "--blocks", "pixels"), "--blocks pixels is repeated"),
    (("prepare", "--backbones", "pixels,pixels"), "argument --backbones: pixels is repeated"),
    (("features", "--backbone", "pixels", "--blocks", "pixels,pixels"), "argument --blocks: pixels is repeated"),
    (("report", "--shots", "1,1"), "argument --shots: 1 is repeated"),
]


@pytest.mark.parametrize("argv, message", REPEATS, ids=[" ".join(a) for a, _ in REPEATS])
def test_a_repeated_value_in_a_list_option_is_refused(run, argv, message):
    one_line(*run(*argv, "--dataset", "digits"), re.escape(message) + ".*list each")


# ---------------------------------------------------------------- 9. cache --kind


@pytest.mark.parametrize("action", [("ls",), ("clear", "--yes"), ("sweep",)])
def test_an_unknown_cache_kind_lists_the_valid_ones(run, action):
    one_line(*run("cache", *action, "--kind", "bogus"), r"unknown kind 'bogus'; valid kinds: denoise, features, projection")
    assert run("cache", "ls", "--kind", "features")[0] == 0


# ---------------------------------------------------------------- 10. the message names the flag given


FLAGS = [
    (("eval", "--backbone", "pixels", "--test-limit", "0"), r"--test-limit must be at least 1 image, got 0"),
    (("sweep-t", "--backbone", "pixels", "--val-limit", "0"), r"--val-limit must be at least 1 image, got 0"),
    (("sweep-blocks", "--backbone", "pixels", "--val-limit", "-3"), r"--val-limit must be at least 1 image, got -3"),
    (("report", "--test-limit", "0", "--out", "rep"), r"--test-limit must be at least 1 image, got 0"),
    (("report", "--seeds-large", "0", "--out", "rep"), r"--seeds-large must be at least 1, got 0"),
    (("report", "--seeds", "1001", "--out", "rep"), r"--seeds must be at most 1000, got 1001"),
    (("eval", "--backbone", "pixels", "--seeds", "5000"), r"--seeds must be at most 1000, got 5000"),
    (("--threads", "99999", "data", "list"), r"argument --threads: expected a whole number of threads from 1 to 1024"),
]


@pytest.mark.parametrize("argv, message", FLAGS, ids=[" ".join(a) for a, _ in FLAGS])
def test_a_bad_count_names_its_own_flag(run, tmp_path, argv, message):
    if argv[0] != "--threads":
        argv = (*argv, "--dataset", "digits")
    one_line(*run(*argv), message)
    assert not (tmp_path / "rep").exists()  # report checks before it writes anything


# ---------------------------------------------------------------- 11. prepare checks before it prints


@pytest.mark.parametrize(
    "argv, message",
    [(("--dataset", "nope"), "unknown dataset 'nope'"), (("--dataset", "digits", "--backbones", "vae"), "no trained")],
)
def test_prepare_checks_dataset_and_backbones_before_printing(run, argv, message):
    one_line(*run("prepare", *argv), message)
