"""What the diffusion model sees at t (issue 15), drawn beside the Explore preview and the Timestep curve.

Not a page: ui/explore.py and ui/timestep.py import it. Compute and cache: genclf.explore.denoise;
tiles, words and figures: genclf.app.denoise_figures.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from genclf import data
from genclf.app import denoise_figures as dfig
from genclf.explore import denoise
from ui import common

IMAGE_KEY = "denoise_image"  # (dataset, test index) of the image last shown on Explore; the Timestep strip follows it


def panel(c: common.Ctx, test_index: int, t: int | None) -> None:
    """x0 | x_t | x̂0 of one test image at t (ddpm), x0 | reconstruction (vae, vqvae), or why there is nothing."""
    st.session_state[IMAGE_KEY] = (c.dataset, int(test_index))
    with common.guard(), st.container(key="denoise_panel"):
        mode, why = denoise.about(c.dataset, c.backbone)
        st.caption("**What the model sees at t**" if mode == "denoise" else "**What the model makes of it**")
        if mode == "none":
            st.caption(why)
            return
        d = denoise.run(c.dataset, c.backbone, "test", [test_index], t, c.seed)
        imgs, caps = dfig.tiles(d)
        for col, img, cap in zip(st.columns(len(imgs), gap="small"), imgs, caps):
            col.image(img, caption=cap, width="stretch", output_format="PNG")
        acc = None
        if mode == "denoise":
            acc = dfig.sweep_accuracy(c.dataset, c.backbone, c.blocks, int(t), st.session_state.get("sweep_params"))
        st.caption(dfig.status_line(d, acc))


def strip(c: common.Ctx, ts: list[int]) -> None:
    """One test image's x_t and x̂0 at every t of `ts`, in two rows (the image last shown on Explore)."""
    with common.guard(), st.container(key="denoise_strip"):
        mode, _ = denoise.about(c.dataset, c.backbone)
        if mode != "denoise" or not ts:
            return
        ds_name, i = st.session_state.get(IMAGE_KEY, (None, 0))
        i = i if ds_name == c.dataset else 0
        d = denoise.strip(c.dataset, c.backbone, "test", i, sorted(int(t) for t in ts), c.seed)
        xt, x0_hat, t_caps, err_caps = dfig.strip_rows(d)
        name = data.load(c.dataset).classes[int(d.y[0])]
        st.markdown(
            f"**What the model sees at each t** · test image #{i} ({name}; click a point on Explore to change it). "
            "Top: the noised input x_t; bottom: the model's one-step guess x̂₀ and its error."
        )
        st.image(xt, caption=t_caps, width=dfig.STRIP_TILE, output_format="PNG")
        st.image(x0_hat, caption=err_caps, width=dfig.STRIP_TILE, output_format="PNG")


def class_error_chart(c: common.Ctx, test_idx: np.ndarray, t: int | None) -> None:
    """Mean denoising (or reconstruction) error per class over a set of test images, at t."""
    with common.guard():
        mode, _ = denoise.about(c.dataset, c.backbone)
        if mode == "none" or len(test_idx) == 0:
            return
        ce = denoise.class_error(c.dataset, c.backbone, "test", test_idx, t, c.seed)
        st.plotly_chart(dfig.class_error_figure(ce, t), key="denoise_class_error")
        if ce.n_set > int(ce.count.sum()):
            st.caption(f"Scored on a stratified {int(ce.count.sum())} of the {ce.n_set:,} selected images.")
