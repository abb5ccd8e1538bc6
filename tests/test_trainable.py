"""Which backbones can be trained: the refusals list them from the registry, and the script that trains the
shipped weights holds every shipped model's recorded command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genclf.backbones import get, names
from genclf.errors import GenclfError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "genclf" / "pretrained" / "fashion-mnist"


def _trainable() -> list[str]:
    return [n for n in names() if get(n).trainable]


def _listed(message: str) -> set[str]:
    """The names after the last ';' of a refusal ('... nothing to train; valid: a, b')."""
    return set(re.findall(r"[a-z0-9_-]+", message.rsplit(";", 1)[1].split(":", 1)[-1])) - {"pick", "one", "of"}


def test_the_registry_knows_simclr_is_trainable_and_pixels_is_not():
    assert {"ddpm", "vae", "vqvae", "gan", "simclr"} <= set(_trainable()) and "pixels" not in _trainable()


def test_cli_train_of_an_untrainable_backbone_lists_every_trainable_one(tmp_path):
    # the parser's choices already leave pixels out (without importing torch); cmd_train is the check
    # that holds for any caller, and its message names what can be trained
    import argparse

    from genclf.cli.train import cmd_train

    with pytest.raises(GenclfError, match="nothing to train") as e:
        cmd_train(argparse.Namespace(backbone="pixels", dataset="digits", out=str(tmp_path / "run")))
    assert _listed(str(e.value)) == set(_trainable()), e.value
    assert not (tmp_path / "run").exists()


def test_a_training_job_of_an_untrainable_backbone_lists_every_trainable_one():
    from genclf.app import jobs

    with pytest.raises(GenclfError, match="nothing to train") as e:
        jobs.start("digits", "pixels")
    assert _listed(str(e.value)) == set(_trainable()), e.value


def _script_commands() -> set[str]:
    text = (REPO / "scripts" / "train_pretrained.sh").read_text()
    out = set()
    for line in text.splitlines():
        line = line.strip().removesuffix(";;").strip()
        if "$G train" in line:
            line = line[line.index("$G train") :].replace("$G", "genclf").replace("$P", "genclf/pretrained/fashion-mnist")
            out.add(" ".join(line.split()))
    return out


def test_the_training_script_runs_every_shipped_models_recorded_command():
    recorded = {}
    for cmd_file in sorted(SHIPPED.glob("*/command.txt")):
        first = cmd_file.read_text().splitlines()[0]
        if first.startswith("genclf train "):
            recorded[cmd_file.parent.name] = " ".join(first.split())
    assert {"ddpm", "vae", "vqvae", "gan", "simclr"} <= set(recorded)
    missing = {k: v for k, v in recorded.items() if v not in _script_commands()}
    assert not missing, f"scripts/train_pretrained.sh lacks {missing}"
