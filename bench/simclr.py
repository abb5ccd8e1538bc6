"""The contrastive competitor: shipped SimCLR features against the shipped DDPM, pixels, and the two fused.

    .venv/bin/python bench/simclr.py [--shots 1,5,10] [--val-seeds 5] [--test-seeds 5] [--ddpm-t 5,10,20,35]
    .venv/bin/python bench/simclr.py --neighbours genclf/pretrained/fashion-mnist/simclr/neighbours.png

Protocol (the project's functions: genclf.experiments run_sweep / block_candidates / train_features):
- every choice is made on the validation split (a fixed stratified 2000-image subset of train) with
  logistic regression on k=10 shots/class from the pool, over shot seeds VAL_SEED0.. (disjoint from the
  test-scoring seeds 0..): the DDPM's t (over --ddpm-t) and then its blocks; SimCLR's blocks and pooling
  grid; the fusion weighting;
- the test split only scores: logreg on k shots/class, seeds 0..test_seeds-1, full 10k test, the same
  shot sets for every pipeline, so leads over pixels + logreg are paired (mean ± std of the per-seed
  differences, and a 95% t-interval).
Fusion: each backbone's feature vector is z-scored with the shots' statistics (heads.standardizer), scaled
so that each backbone carries a chosen share of the total squared norm, and concatenated; the logreg then
runs unstandardized. Plain concatenation (per-feature z-scores, the 2048-d DDPM outweighing the 128-d
SimCLR 16:1) is one of the candidates.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from genclf import data, features, heads  # noqa: E402
from genclf.experiments import VAL_LIMIT, block_candidates, run_sweep, summarize, train_features  # noqa: E402
from genclf.experiments.fewshot import eval_indices, resolve_t  # noqa: E402

VAL_SEED0 = 1000  # validation shot sets use seeds 1000..; test scoring uses 0..: no shot set is both
SELECT_K = 10
FUSIONS = {"concat": None, "equal": 0.5, "ddpm 2:1": 2 / 3, "simclr 2:1": 1 / 3}  # the DDPM's share of the norm


def sweep(ds, bb, candidates, kind, fixed, val_idx, seeds) -> list[dict]:
    """Validation accuracy of logreg at k=SELECT_K for each candidate t (kind 't') or block set ('blocks')."""

    def fn(c, idx, role):
        t, blocks = (c, fixed) if kind == "t" else (fixed, bb.check_blocks(c))
        tag = {"split": "val", "limit": len(val_idx)} if role == "val" else {"split": "shots"}
        return train_features(ds, bb, idx, t, blocks, tag)

    shot_sets = [(s, data.shot_indices(ds, SELECT_K, s)) for s in seeds]
    return summarize(run_sweep(candidates, fn, ds.y_train, val_idx, shot_sets, "logreg"))


def best(curve: list[dict]):
    top = max(curve, key=lambda r: r["accuracy"])
    return top["candidate"], top["accuracy"]


def fuse(parts: list[np.ndarray], shots: list[np.ndarray], share: float | None) -> np.ndarray:
    """parts[0] ddpm, parts[1] simclr (rows to transform); shots: the same sets' shot rows (for the statistics)."""
    if share is None:
        return np.concatenate(parts, 1)
    out = []
    for p, s, w in zip(parts, shots, (share, 1 - share), strict=True):
        mean, scale = heads.standardizer(s)
        out.append((p - mean) / scale * np.sqrt(w / p.shape[1]))
    return np.concatenate(out, 1) * np.sqrt(sum(p.shape[1] for p in parts))


def score(pipe: str, f: dict, y_shots, y_eval, seed: int, share=None) -> float:
    """Accuracy of logreg for one pipeline given per-backbone (shot, eval) features in f."""
    if pipe == "pixels":
        xs, xe = f["pixels"]
        pred = heads.fit_predict("logreg", xs, y_shots, xe, seed=seed, standardize=False)
    elif pipe == "fusion":
        shots = [f["ddpm"][0], f["simclr"][0]]
        xs = fuse(shots, shots, share)
        xe = fuse([f["ddpm"][1], f["simclr"][1]], shots, share)
        pred = heads.fit_predict("logreg", xs, y_shots, xe, seed=seed, standardize=share is None)
    else:
        xs, xe = f[pipe]
        pred = heads.fit_predict("logreg", xs, y_shots, xe, seed=seed)
    return float((pred == y_eval).mean())


def neighbours(dataset: str, out: str, per_class: int = 2, k: int = 8) -> None:
    """A grid: per row, a test image (two per class, seeded) and its k nearest train images in the shipped
    SimCLR's default feature space (cosine on standardized features); the whole train split is the pool."""
    from genclf.backbones.simclr import nearest_neighbours, neighbour_grid
    from genclf.data import images

    ds = data.load(dataset)
    rng = np.random.default_rng(0)
    q = np.concatenate([rng.choice(np.flatnonzero(ds.y_test == c), per_class, replace=False) for c in range(ds.n_classes)])
    ft = features.extract(dataset, "simclr", split="test")
    fp = features.extract(dataset, "simclr", split="train")
    pos = {int(i): j for j, i in enumerate(ft.idx)}
    fq = ft.x[[pos[int(i)] for i in q]]
    grid = neighbour_grid(ds.x_test[q], fq, ds.x_train[fp.idx], fp.x, k=k)
    images.save_png(out, images.grid(grid, cols=k + 1, scale=2))
    nn = nearest_neighbours(fq, fp.x, k)
    same = float((ds.y_train[fp.idx][nn] == ds.y_test[q][:, None]).mean())
    print(f"wrote {out}: {len(q)} test queries (left), their {k} nearest train images; {100 * same:.0f}% share its class")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--shots", default="1,5,10")
    p.add_argument("--val-seeds", type=int, default=5)
    p.add_argument("--test-seeds", type=int, default=5)
    p.add_argument("--ddpm-t", default="5,10,20,35", help="t candidates for the DDPM (the validated plateau)")
    p.add_argument("--val-limit", type=int, default=VAL_LIMIT, help="validation subset (quick looks: smaller)")
    p.add_argument("--test-limit", type=int, default=None, help="stratified test subset (default: the full split)")
    p.add_argument("--neighbours", metavar="PNG", help="only draw test queries beside their nearest train images")
    a = p.parse_args()
    if a.neighbours:
        return neighbours(a.dataset, a.neighbours)
    t_start = time.time()
    ds = data.load(a.dataset)
    shots = [int(k) for k in a.shots.split(",")]
    val_idx = eval_indices(ds, "val", a.val_limit)
    vseeds = list(range(VAL_SEED0, VAL_SEED0 + a.val_seeds))
    bbs = {n: features.backbone(n, a.dataset) for n in ("pixels", "ddpm", "simclr")}

    # ---- choices, on validation only
    curve_t = sweep(ds, bbs["ddpm"], [int(t) for t in a.ddpm_t.split(",")], "t", bbs["ddpm"].default_blocks(), val_idx, vseeds)
    t_ddpm, _ = best(curve_t)
    curve_b = sweep(ds, bbs["ddpm"], block_candidates(bbs["ddpm"]), "blocks", t_ddpm, val_idx, vseeds)
    blocks_ddpm, acc_ddpm = best(curve_b)
    curve_s = sweep(ds, bbs["simclr"], block_candidates(bbs["simclr"]), "blocks", None, val_idx, vseeds)
    blocks_simclr, acc_simclr = best(curve_s)
    cfg = {"pixels": (None, bbs["pixels"].default_blocks()), "ddpm": (t_ddpm, blocks_ddpm), "simclr": (None, blocks_simclr)}
    print(f"ddpm t on validation (k={SELECT_K}, blocks {'+'.join(bbs['ddpm'].default_blocks())}):")
    print("  " + ", ".join(f"t={r['candidate']} {100 * r['accuracy']:.1f}" for r in curve_t))
    for name, curve in (("ddpm", curve_b), ("simclr", curve_s)):
        print(f"{name} blocks on validation (k={SELECT_K}):")
        print("  " + ", ".join(f"{'+'.join(r['candidate'])} {100 * r['accuracy']:.1f}" for r in curve))
    print(f"chosen: ddpm t={t_ddpm} {'+'.join(blocks_ddpm)} ({100 * acc_ddpm:.1f}); simclr {'+'.join(blocks_simclr)} "
          f"({100 * acc_simclr:.1f})", flush=True)  # fmt: skip

    def shot_feats(idx):
        out = {}
        for n, (t, blocks) in cfg.items():
            t = resolve_t(bbs[n], t)
            out[n] = train_features(ds, bbs[n], idx, t, blocks, {"split": "shots"})
        return out

    vtag = {"split": "val", "limit": len(val_idx)}
    xv = {n: train_features(ds, bbs[n], val_idx, t, b, vtag) for n, (t, b) in cfg.items()}
    yv = ds.y_train[val_idx]
    fusion_val = {}
    for s in vseeds:
        sidx = data.shot_indices(ds, SELECT_K, s)
        xs = shot_feats(sidx)
        f = {n: (xs[n], xv[n]) for n in xs}
        for name, share in FUSIONS.items():
            fusion_val.setdefault(name, []).append(score("fusion", f, ds.y_train[sidx], yv, s, share))
    fusion_name = max(FUSIONS, key=lambda n: np.mean(fusion_val[n]))
    share = FUSIONS[fusion_name]
    print("fusion weighting on validation (k=10): " + ", ".join(f"{n} {100 * np.mean(v):.1f}" for n, v in fusion_val.items()))
    print(f"chosen fusion: {fusion_name}", flush=True)

    # ---- validation and test tables on the same shot sets for every pipeline
    pipes = ["pixels", "ddpm", "simclr", "fusion"]
    xt = {n: features.extract(a.dataset, n, t=t, blocks=b, split="test", limit=a.test_limit) for n, (t, b) in cfg.items()}
    yt = ds.y_test[xt["pixels"].idx]
    xt = {n: r.x for n, r in xt.items()}
    res: dict[tuple, list[float]] = {}
    for split, seeds, xe, ye in (("val", vseeds, xv, yv), ("test", range(a.test_seeds), xt, yt)):
        for k in shots:
            for s in seeds:
                sidx = data.shot_indices(ds, k, s)
                xs = shot_feats(sidx)
                f = {n: (xs[n], xe[n]) for n in xs}
                for pipe in pipes:
                    res.setdefault((split, pipe, k), []).append(score(pipe, f, ds.y_train[sidx], ye, s, share))
    print(
        f"\n{ds.name}, logistic regression, mean ± std over shot seeds; validation: {len(val_idx)} images, "
        f"seeds {vseeds[0]}-{vseeds[-1]}; test: {len(yt)} images, seeds 0-{a.test_seeds - 1}; same shot sets in every row"
    )
    labels = {
        "pixels": "pixels + logreg",
        "ddpm": f"ddpm, t={t_ddpm}, {'+'.join(blocks_ddpm)}",
        "simclr": f"simclr, {'+'.join(blocks_simclr)}",
        "fusion": f"ddpm + simclr fused ({fusion_name})",
    }
    head = " | ".join(f"val k={k}" for k in shots) + " | " + " | ".join(f"test k={k}" for k in shots)
    print(f"| pipeline (choices on validation) | {head} |")
    print("|---|" + "---|" * (2 * len(shots)))
    for pipe in pipes:
        accs = [100 * np.array(res[(sp, pipe, k)]) for sp in ("val", "test") for k in shots]
        cells = [f"{v.mean():.1f} ± {v.std():.1f}" for v in accs]
        print(f"| {labels[pipe]} | " + " | ".join(cells) + " |")
    print("\npaired test leads in points (same shots; mean ± std over seeds [95% t-interval]):")
    from scipy import stats

    print("| lead | " + " | ".join(f"k={k}" for k in shots) + " |")
    print("|---|" + "---|" * len(shots))
    for a_, b_ in (("ddpm", "pixels"), ("simclr", "pixels"), ("fusion", "pixels"), ("ddpm", "simclr"), ("fusion", "ddpm")):
        cells = []
        for k in shots:
            d = 100 * (np.array(res[("test", a_, k)]) - np.array(res[("test", b_, k)]))
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            cells.append(f"{d.mean():+.1f} ± {d.std():.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}]")
        print(f"| {a_} − {b_} | " + " | ".join(cells) + " |")
    print(f"\n({time.time() - t_start:.0f}s)")


if __name__ == "__main__":
    main()
