"""Make a finished DDPM folder resumable when its training state was not kept: a checkpoint from its EMA weights.

    .venv/bin/python scripts/resumable_checkpoint.py genclf/pretrained/fashion-mnist/ddpm

writes FOLDER/checkpoint.safetensors with both UNets (trained and EMA) set to the EMA weights, the step,
images seen and seconds from config.json, and no optimizer state. `genclf train ... --out FOLDER --epochs MORE`
then continues the run from that step: the same data order and noise the original run would have used,
but a warm start (the live UNet restarts from the EMA weights, Adam from zero), not a bit-exact continuation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from genclf.backbones.checkpoint import CHECKPOINT, save_checkpoint
from genclf.backbones.io import load_backbone
from genclf.errors import GenclfError

NOTE = "warm start: both UNets from the shipped EMA weights; the original run's Adam state was not kept"


def warm_start(folder: Path) -> Path:
    bb = load_backbone(folder)
    if bb.name != "ddpm":
        raise GenclfError(f"{folder} holds a {bb.name}; only a ddpm keeps weights (its EMA) that a checkpoint can start from")
    bb.unet.load_state_dict(bb.ema.state_dict())
    doc = json.loads((folder / "config.json").read_text())
    train = doc.get("train", {})
    state = {
        "step": int(doc["steps"]),
        "images_seen": int(doc["images_seen"]),
        "seconds": float(doc.get("train_seconds", 0.0)),
        "global_batch": int(train.get("batch_size", 128)) * int(train.get("processes", 1)),
        "note": NOTE,
    }
    save_checkpoint(folder, bb, None, state)
    return folder / CHECKPOINT


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        path = warm_start(Path(sys.argv[1]))
    except GenclfError as e:
        sys.exit(f"error: {e}")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
