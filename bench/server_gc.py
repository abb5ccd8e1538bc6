"""What one full garbage collection costs in the dashboard server's heap: the reason for `runner.postScriptGC =
false` in .streamlit/config.toml (Streamlit's default runs gc.collect(2) after every script run, holding the GIL).

    .venv/bin/python bench/server_gc.py       # reads cache/ like the server; about 10 s

Loads what the server's start loads (ui/common.preload: the default backbone, its data, the default charts and
Few-shot run), then times gc.collect(2) three times, then once more after gc.freeze() (what preload does).
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import plotly.graph_objects  # noqa: F401  (the pages' imports, in the server's heap too)
    import streamlit  # noqa: F401

    from genclf import data
    from genclf.app import live, views

    dataset = "fashion-mnist"
    bb = views.backbone_choices(dataset)["ddpm"]
    views.block_choices(dataset, bb)
    data.load(dataset)
    live.warm_explore(dataset, bb)
    live.warm_fewshot(dataset, bb)
    for i in range(3):
        t0 = time.perf_counter()
        gc.collect(2)
        print(f"full collection {i + 1}: {time.perf_counter() - t0:.3f} s, {len(gc.get_objects()):,} objects tracked")
    gc.freeze()
    t0 = time.perf_counter()
    gc.collect(2)
    print(f"after gc.freeze(): {time.perf_counter() - t0:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
