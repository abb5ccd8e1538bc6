"""`genclf` / `python -m genclf`: the same calls the dashboard makes.

Bad input exits with code 2 and one line that says what was wrong and what to do instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from genclf.cli.common import BACKBONE_NAMES, Parser, _str_list, names, run_verb  # noqa: F401
from genclf.cli.data import cmd_cache, cmd_data_fetch, cmd_data_list, cmd_data_show
from genclf.cli.train import cmd_features, cmd_train
from genclf.errors import GenclfError


def build_parser() -> Parser:
    from genclf import data
    from genclf.cache import KINDS
    from genclf.cli import evaluate

    p = Parser(prog="genclf", description="Few-shot classification with generative features.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    threads = {"type": _threads_arg, "metavar": "N", "help": THREADS_HELP}
    p.add_argument("--threads", default=None, **threads)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    d = sub.add_parser("data", help="list, inspect and fetch datasets")
    dsub = d.add_subparsers(dest="action", required=True, parser_class=Parser)
    dsub.add_parser("list", help="datasets, whether present, sizes, remedies").set_defaults(fn=cmd_data_list)
    s = dsub.add_parser("show", help="classes, counts per split and class, shape, fingerprint")
    s.add_argument("name", help=f"one of {', '.join(data.dataset_names())}")
    s.add_argument("--grid", metavar="PNG", help="also write a grid of example images here")
    s.set_defaults(fn=cmd_data_show)
    f = dsub.add_parser("fetch", help="download mnist/cifar10/cifar100 with torchvision (needs internet)")
    f.add_argument("name", choices=["mnist", "cifar10", "cifar100"])
    f.set_defaults(fn=cmd_data_fetch)

    c = sub.add_parser("cache", help="manage the artifact store (ls, du, sweep leftovers, clear)")
    c.add_argument("action", choices=["ls", "du", "sweep", "clear"])
    c.add_argument("--kind", help=f"only this artifact kind: {', '.join(KINDS)}")
    c.add_argument("--yes", action="store_true", help="confirm clear")
    c.set_defaults(fn=cmd_cache)

    t = sub.add_parser("train", help="train a generative backbone on a dataset's unlabeled train split")
    t.add_argument("--dataset", default=data.DEFAULT_DATASET)
    t.add_argument("--backbone", required=True, choices=[n for n in names() if n != "pixels"])
    t.add_argument("--preset", default="small", help="tiny or small (every backbone); ddpm also medium, large (GPU-sized)")
    t.add_argument("--epochs", type=float, default=5)
    t.add_argument("--batch-size", type=int, default=128, help="per process (global batch = this x processes)")
    t.add_argument(
        "--lr", type=float, default=None, help="default: the backbone's own; on a resumed run, it replaces the checkpoint's"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=None, help="train on N random images only")
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    t.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after this many minutes of training (a usable model and a checkpoint); the same command resumes",
    )
    t.add_argument("--config", help="JSON overrides of the preset, e.g. '{\"latent\": 16}'")
    t.add_argument("--out", help="output folder (default runs/<dataset>/<backbone>)")
    t.add_argument("--no-flip", action="store_true", help="no horizontal flips even where the dataset allows them")
    t.add_argument("--force", action="store_true", help="retrain a finished run from scratch (its checkpoint and log go too)")
    t.set_defaults(fn=cmd_train)

    fe = sub.add_parser("features", help="extract (or reuse cached) (N, D) features")
    fe.add_argument("--dataset", default=data.DEFAULT_DATASET)
    fe.add_argument("--backbone", required=True, help=BACKBONE_HELP)
    fe.add_argument("--t", type=evaluate.one_t_arg, default=None, help="diffusion timestep 0..999 (ddpm only)")
    fe.add_argument("--blocks", type=_str_list, default=None, help="comma-separated block names")
    fe.add_argument("--split", default="test", choices=["train", "val", "pool", "test"])
    fe.add_argument("--limit", type=int, default=None, help="a stratified, seeded subset of N images")
    fe.add_argument("--seed", type=int, default=0)
    fe.set_defaults(fn=cmd_features)

    evaluate.add_commands(sub)
    for verb in COMPUTE_VERBS:  # also accepted after the verb: `genclf train --threads 1 ...`
        sub.choices[verb].add_argument("--threads", default=argparse.SUPPRESS, **threads)
    __import__("genclf.cli.prepare", fromlist=["add_command"]).add_command(sub)
    return p


COMPUTE_VERBS = ("train", "features", "eval", "sweep-t", "sweep-blocks", "report")
THREADS_HELP = (
    "torch threads for the computation (default: $OMP_NUM_THREADS when set, else one per core); on a machine "
    "shared with other work, 1 is often several times faster"
)
BACKBONE_HELP = (
    f"{', '.join(names())}, DATASET/NAME for a backbone trained on another dataset of the same image shape "
    "(e.g. fashion-mnist/ddpm), or a folder written by `genclf train`"
)


MAX_THREADS = 1024


def _threads_arg(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads from 1 to {MAX_THREADS}; got {s!r}")
    return n


def set_threads(n: int | None) -> None:
    """--threads N: torch (and OpenMP/MKL in libraries and child processes) use N threads. Without it,
    torch follows $OMP_NUM_THREADS by itself."""
    if n is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    set_threads(args.threads)
    try:
        return run_verb(args.fn, args)
    except GenclfError as e:
        sys.stderr.write(f"genclf: error: {e}\n")
        return 2
    except BrokenPipeError:  # `genclf data list | head`
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("genclf: interrupted; rerun the same command to resume\n")
        return 130
    except Exception as e:  # a full disk mid-write (a checkpoint, a log row): files are replaced atomically, so say so
        if _disk_full(e):
            sys.stderr.write(
                f"genclf: error: the disk is full ({e}); nothing already written was lost (checkpoints and cache entries "
                "are replaced atomically): free space, then rerun the same command to resume\n"
            )
            return 2
        raise


def _disk_full(e: BaseException) -> bool:
    """OSError ENOSPC/EDQUOT, or safetensors' 'I/O error ... (os error 28)' (it raises its own type)."""
    import errno

    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    return type(e).__name__ == "SafetensorError" and "(os error 28)" in str(e)
