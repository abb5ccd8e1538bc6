"""The GPU-sized DDPM presets, and the GPU paths falling back cleanly on a machine without a GPU."""

from __future__ import annotations

import pytest

from genclf.backbones import get


@pytest.mark.parametrize(
    "preset,params_m,attn",
    [("small", 1.11, ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"]), ("medium", 8.95, None), ("large", 35.75, None)],
)
def test_ddpm_presets(preset, params_m, attn):
    bb = get("ddpm").from_preset(preset, (3, 32, 32))
    assert sum(p.numel() for p in bb.unet.parameters()) / 1e6 == pytest.approx(params_m, abs=0.01)
    downs = [type(b).__name__ for b in bb.unet.down_blocks]
    # the GPU presets follow the DDPM CIFAR-10 UNet: attention at 16x16 (the second level of a 32x32 input) only
    assert downs == (attn or ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"])
    ups = [type(b).__name__ for b in bb.unet.up_blocks]
    assert ups == [d.replace("Down", "Up") for d in reversed(downs)]
    # the original layout keeps the config (and so the cache keys) it always had
    assert ("attention_levels" in bb.config_dict()) == (preset != "small")


def test_large_preset_trains_a_step_on_32x32_rgb():
    import numpy as np

    bb = get("ddpm").from_preset("large", (3, 32, 32))
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    bb.fit(x, batch_size=2, max_steps=1)
    assert bb.features(x, 10).shape == (2, 2 * 256 * 16)


def test_umap_runs_on_umap_learn_without_cuml(monkeypatch):
    from genclf.explore import projection

    projection.umap_backend.cache_clear()
    try:
        import cuml  # noqa: F401
    except ImportError:
        assert projection.umap_backend() == "umap-learn"
    projection.umap_backend.cache_clear()
    monkeypatch.setenv("GENCLF_UMAP", "cpu")
    assert projection.umap_backend() == "umap-learn"
    projection.umap_backend.cache_clear()


def test_a_cuml_layout_has_a_key_of_its_own(use_tiny_runs, monkeypatch):
    """A layout computed on a GPU (cuML) is never served where umap-learn would compute it, and the reverse; the
    umap-learn keys stay what they were (the shipped layouts are found by them)."""
    from genclf import explore
    from genclf.explore import layouts

    v = explore.View("digits", "ddpm", t=50, n=200)
    assert v.method == "umap" and "umap_backend" not in layouts.parts(v)
    cpu = layouts.make_key("projection", layouts.parts(v))
    monkeypatch.setattr(layouts, "umap_backend", lambda: "cuml")
    assert layouts.make_key("projection", layouts.parts(v)) != cpu
    w = explore.View("digits", "ddpm", t=50, n=200, method="pca")
    assert "umap_backend" not in layouts.parts(w)  # PCA is the same on either machine
