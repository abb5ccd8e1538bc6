"""`genclf data ...` and `genclf cache ...`."""

from __future__ import annotations

from pathlib import Path

from genclf.cli.common import Parser  # noqa: F401
from genclf.errors import GenclfError, unknown


def cmd_data_list(a) -> int:
    from genclf import data

    print(f"{'name':16} {'present':8} {'train':>7} {'test':>7}  description / remedy")
    for name, s in data.REGISTRY.items():
        if s.present():
            try:
                ds = data.load(name)
            except GenclfError as e:  # one damaged dataset should not hide the others
                print(f"{name:16} {'damaged':8} {'-':>7} {'-':>7}  {s.description}. {e}")
                continue
            print(f"{name:16} {'yes':8} {len(ds.y_train):7d} {len(ds.y_test):7d}  {s.description}")
        else:
            print(f"{name:16} {'no':8} {'-':>7} {'-':>7}  {s.description}. To get it: {s.remedy()}")
    print(f"{'folder:PATH':16} {'':8} {'':>7} {'':>7}  your images: PATH/<class>/*.png (+ optional PATH/unlabeled/)")
    return 0


def cmd_data_show(a) -> int:
    import numpy as np

    from genclf import data
    from genclf.data import images

    ds = data.load(a.name)
    s = data.splits(ds)
    print(f"dataset      {ds.name}  ({ds.source})")
    print(f"image shape  {ds.shape} (C, H, W) uint8")
    print(f"fingerprint  {ds.fingerprint}")
    print(
        f"splits       train {len(ds.y_train)} = pool {len(s.pool)} + val {len(s.val)}; test {len(ds.y_test)}; "
        f"unlabeled extra {len(ds.x_unlabeled)}"
    )
    if ds.skipped:
        print(f"skipped      {ds.skipped} unreadable file(s)")
    tr = np.bincount(ds.y_train, minlength=ds.n_classes)
    te = np.bincount(ds.y_test, minlength=ds.n_classes)
    va = np.bincount(ds.y_train[s.val], minlength=ds.n_classes)
    print(f"{'class':>5} {'name':24} {'train':>6} {'val':>6} {'test':>6}")
    for i, c in enumerate(ds.classes):
        print(f"{i:5d} {c[:24]:24} {tr[i]:6d} {va[i]:6d} {te[i]:6d}")
    if a.grid:
        per, n_rows = 8, min(ds.n_classes, 20)
        blank = np.full((per, *ds.shape), 255, np.uint8)  # pads classes with fewer than `per` images
        rows = [np.concatenate([ds.x_train[np.flatnonzero(ds.y_train == c)[:per]], blank])[:per] for c in range(n_rows)]
        path = images.save_png(Path(a.grid), images.grid(np.concatenate(rows), cols=per, scale=3))
        which = "one row per class" if n_rows == ds.n_classes else f"one row for each of the first {n_rows} classes"
        print(f"wrote {path} ({per} train examples per class, {which})")
    return 0


def cmd_data_fetch(a) -> int:
    from genclf import data

    root = data.fetch(a.name)
    print(f"{a.name} is in {root}")
    return 0


# ------------------------------------------------------------------ cache


def cmd_cache(a) -> int:
    from genclf.cache import Cache

    c = Cache()
    if a.kind is not None and a.kind not in (valid := c.kinds()):
        raise unknown("kind", a.kind, valid)
    if a.action == "ls":
        for e in c.entries(a.kind):
            parts = e.meta.get("parts", {})
            desc = " ".join(f"{k}={parts[k]}" for k in ("dataset", "backbone", "split", "t", "blocks") if k in parts)
            print(f"{e.kind:12} {e.key[:12]} {e.size / 1e6:8.2f} MB  {e.meta.get('created', '?')}  {desc}")
    elif a.action == "du":
        total = 0
        for kind, (n, b) in sorted(c.du().items()):
            print(f"{kind:12} {n:6d} entries {b / 1e6:10.2f} MB")
            total += b
        print(f"{'total':12} {'':6} {'':7} {total / 1e6:10.2f} MB in {c.root}")
        if left := c.leftovers():
            size = sum(p.stat().st_size for d in left for p in d.rglob("*") if p.is_file())
            print(
                f"{len(left)} leftover folder(s) of interrupted writes ({size / 1e6:.2f} MB); "
                "`genclf cache sweep` removes them and keeps every entry"
            )
    elif a.action == "sweep":
        n, b = c.sweep(a.kind)
        print(f"removed {n} leftover folder(s) of interrupted writes ({b / 1e6:.2f} MB) from {c.root}; entries kept")
    else:
        if not a.yes:
            raise GenclfError("`genclf cache clear` deletes cached artifacts; rerun with --yes to confirm")
        print(f"removed {c.clear(a.kind)} entries from {c.root}")
    return 0


# ------------------------------------------------------------------ train / features
