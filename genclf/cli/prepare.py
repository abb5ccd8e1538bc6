"""`genclf prepare`: compute ahead what the dashboard reads (features, layouts, Few-shot features, the default sweep)."""

from __future__ import annotations

import shlex

from genclf.cli.common import _str_list
from genclf.errors import GenclfError


def add_command(sub) -> None:
    from genclf import data

    p = sub.add_parser(
        "prepare",
        help="compute everything the dashboard reads, ahead (idempotent: rerun to resume)",
        description="Features of the Explore samples at every grid t, their 2D/3D UMAP and PCA layouts, the Few-shot "
        "features at the best validation t, and the default Timestep sweep, for each backbone. Everything lands in the "
        "cache: kill it and rerun it, nothing finished is redone.",
    )
    p.add_argument("--dataset", default=data.DEFAULT_DATASET)
    p.add_argument(
        "--backbones",
        type=_str_list,
        default=None,
        help="comma-separated (default: every trained backbone of the dataset, then pixels)",
    )
    p.add_argument("--ship", action="store_true", help="also write the default sample's layouts into genclf/pretrained/")
    p.add_argument("--plan", action="store_true", help="list the steps and whether each is done; compute nothing")
    p.set_defaults(fn=cmd_prepare)


def _backbones(dataset: str, names: list[str] | None) -> list[str]:
    from genclf.app import views

    choices = views.backbone_choices(dataset)  # label -> name or folder, ddpm first, pixels last
    if not names:
        return list(choices.values())
    bad = [n for n in names if n not in choices and n not in choices.values()]
    if bad:
        raise GenclfError(f"no trained backbone {bad[0]!r} for {dataset}; ready ones: {', '.join(choices)}")
    out = [choices.get(n, n) for n in names]
    if len(set(out)) < len(out):  # a label and its folder name the same backbone
        again = next(n for n in names if out.count(choices.get(n, n)) > 1)
        raise GenclfError(f"--backbones names {again!r} twice (by label and by folder); list each backbone once")
    return out


def cmd_prepare(a) -> int:
    import time

    from tqdm import tqdm

    from genclf import data, features
    from genclf.app import prepare

    data.load(a.dataset)  # nothing is printed before the dataset and every backbone are known good
    backbones = _backbones(a.dataset, a.backbones)
    for b in backbones:
        features.backbone(b, a.dataset)  # a damaged or ill-fitting model fails here, with its one-line error
    if a.plan:
        steps = prepare.plan(a.dataset, backbones)
        done = 0
        for s in steps:
            ok = s.done()
            done += ok
            print(f"{'done' if ok else 'todo'}  {s.name}  (~{s.cost:.1f} s)")
        print(f"{done}/{len(steps)} steps done")
        return 0
    print(f"genclf prepare: {a.dataset} · {', '.join(backbones)}", flush=True)
    t0 = time.time()
    fmt = "{desc}{percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]{postfix}"  # units: estimated seconds
    bar = tqdm(total=1, dynamic_ncols=True, bar_format=fmt)

    def progress(done: float, total: float, info: dict) -> None:
        if bar.total != round(total, 1):
            bar.reset(total=round(total, 1))
        bar.n = round(done, 1)
        bar.set_description(f"{info.get('ran', 0)}/{info.get('of', 0)} steps", refresh=False)
        bar.set_postfix_str(info.get("step", "")[:70], refresh=False)
        bar.refresh()

    out = prepare.prepare(a.dataset, backbones, progress)
    bar.close()
    print(f"ran {out['ran']} of {out['steps']} steps in {time.time() - t0:.0f} s (nothing left to do)")
    prepare.record(a.dataset, backbones, out, time.time() - t0)
    if a.ship:
        if any("/" in b for b in backbones):
            raise GenclfError("only shipped backbones (by name) can ship layouts; drop the runs from --backbones")
        cmd = shlex.join(["genclf", "prepare", "--dataset", a.dataset, "--backbones", ",".join(backbones), "--ship"])
        folder = prepare.ship(a.dataset, backbones, cmd)
        print(f"shipped layouts written to {folder}")
    return 0
