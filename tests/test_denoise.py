"""genclf.explore.denoise: x_t is the features' own UNet input, x̂0 is the closed form, results are cached;
the panel's words and the sweep lookup; an AppTest of the Explore panel and the Timestep strip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler
from streamlit.testing.v1 import AppTest

from genclf import explore, features
from genclf.app import denoise_figures as dfig
from genclf.app import views
from genclf.backbones import get
from genclf.cache import Cache
from genclf.errors import GenclfError
from genclf.explore import denoise

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TS = [0, 10, 250, 500, 999, 10]


@pytest.fixture(autouse=True)
def fresh_memo():
    denoise._MEMO.clear()
    features._BACKBONES.clear()
    yield


@pytest.fixture
def ddpm(tiny_images):
    """A dummy-scale DDPM (block_out_channels (4, 8)) trained for 3 steps on 8x8 images."""
    bb = get("ddpm").from_preset("tiny", tiny_images.shape[1:])
    return bb.fit(tiny_images, seed=0, batch_size=16, max_steps=3)


def test_x0_hat_is_the_closed_form_and_matches_diffusers(ddpm, tiny_images):
    x = tiny_images[: len(TS)]
    out = denoise.denoise_batch(ddpm, x, TS, seed=2)
    xt, eps_hat, x0_hat = (torch.from_numpy(out[k]).double() for k in ("xt", "eps_hat", "x0_hat"))
    with torch.inference_mode():  # eps_hat is the EMA UNet's prediction for that very x_t and t
        ref = ddpm.ema(torch.from_numpy(out["xt"]), torch.tensor(TS)).sample
    np.testing.assert_allclose(out["eps_hat"], ref.numpy(), rtol=1e-5, atol=1e-6)
    abar = ddpm.scheduler.alphas_cumprod.double()[TS].view(-1, 1, 1, 1)
    closed = (xt - (1 - abar).sqrt() * eps_hat) / abar.sqrt()  # x̂0 = (x_t - sqrt(1-abar) eps) / sqrt(abar)
    np.testing.assert_allclose(x0_hat.numpy(), closed.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose((abar.sqrt() * x0_hat + (1 - abar).sqrt() * eps_hat).numpy(), xt.numpy(), atol=1e-4)
    # diffusers' own one-step estimate (pred_original_sample, clipped to [-1, 1]) agrees
    sched = DDPMScheduler.from_config(ddpm.scheduler.config)
    for k, t in enumerate(TS):
        st = sched.step(torch.from_numpy(out["eps_hat"][k : k + 1]), t, torch.from_numpy(out["xt"][k : k + 1]))
        np.testing.assert_allclose(st.pred_original_sample[0].numpy(), np.clip(out["x0_hat"][k], -1, 1), atol=1e-4)
    # at t=0 the guess is nearly the clean image; at t=999 it is not
    err = np.abs(np.clip(out["x0_hat"], -1, 1) - (tiny_images[: len(TS)] / 127.5 - 1))
    assert err[0].mean() < 0.05 < err[4].mean()


def test_xt_is_exactly_what_the_unet_sees_in_features(ddpm, tiny_images):
    x, t, seed = tiny_images[:12], 250, 3
    seen = {}
    hook = ddpm.ema.register_forward_pre_hook(lambda _m, args: seen.update(xt=args[0].clone()))
    try:
        ddpm.features(x, t, seed=seed)
    finally:
        hook.remove()
    out = denoise.denoise_batch(ddpm, x, [t] * len(x), seed=seed)
    np.testing.assert_array_equal(out["xt"], seen["xt"].numpy())  # bit for bit
    alone = denoise.denoise_batch(ddpm, x[5:6], [t], seed=seed)  # an image's noise never depends on its batch
    np.testing.assert_array_equal(alone["xt"][0], out["xt"][5])
    other = denoise.denoise_batch(ddpm, x, [t] * len(x), seed=seed + 1)
    assert not np.allclose(other["xt"], out["xt"])


def test_snr_falls_with_t(ddpm):
    s = [denoise.snr(ddpm, t) for t in (0, 10, 100, 500, 999)]
    assert all(a > b for a, b in zip(s, s[1:])) and s[0] > 1000 and s[-1] < 1e-3
    a = denoise.alpha_bar(ddpm, 100)
    assert s[2] == pytest.approx(a / (1 - a))
    with pytest.raises(GenclfError, match="outside"):
        denoise.snr(ddpm, 1000)


def test_run_strip_and_class_error_go_through_the_cache(use_tiny_runs):
    d = denoise.run("digits", "ddpm", "test", [0, 1, 2], t=50)
    assert d.mode == "denoise" and d.xt.shape == d.x0.shape == d.x0_hat.shape == (3, 1, 8, 8)
    assert d.xt.dtype == np.uint8 and d.error.shape == (3,) and (d.error >= 0).all() and list(d.ts) == [50] * 3
    entries = Cache().entries("denoise")
    assert len(entries) == 1 and entries[0].meta["parts"]["t"] == [50] * 3
    denoise._MEMO.clear()  # the disk path serves the same arrays
    again = denoise.run("digits", "ddpm", "test", [0, 1, 2], t=50)
    np.testing.assert_array_equal(again.x0_hat, d.x0_hat)
    assert len(Cache().entries("denoise")) == 1
    late = denoise.run("digits", "ddpm", "test", [0, 1, 2], t=900)
    assert not np.array_equal(late.xt, d.xt) and (late.snr < d.snr).all()

    ts = [0, 50, 900]
    s = denoise.strip("digits", "ddpm", "test", 1, ts)
    assert list(s.ts) == ts and len(s.xt) == 3 and (s.idx == 1).all()
    np.testing.assert_array_equal(s.xt[1], d.xt[1])  # the same noise as the single-t view
    np.testing.assert_allclose(s.x0_hat[2].astype(int), late.x0_hat[1].astype(int), atol=1)

    idx = np.arange(60)
    ce = denoise.class_error("digits", "ddpm", "test", idx, t=50, limit=40)
    assert ce.count.sum() == 40 and ce.n_set == 60
    sub = denoise.error_subset(features.data.load("digits").y_test, idx, 40)
    per = denoise.run("digits", "ddpm", "test", sub, t=50)
    for c in np.flatnonzero(ce.count):
        assert ce.mean[c] == pytest.approx(per.error[per.y == c].mean(), rel=1e-5)
    assert np.isnan(ce.mean[ce.count == 0]).all()


def test_autoencoders_reconstruct_and_the_rest_say_why(use_tiny_runs):
    d = denoise.run("digits", "vae", "test", [3, 4], t=None)
    bb = features.backbone("vae", "digits")
    assert d.mode == "reconstruct" and d.xt is None and d.ts is None
    np.testing.assert_array_equal(d.x0_hat, bb.samples(2, images=d.x0)[2:])
    with pytest.raises(GenclfError, match="no timestep"):
        denoise.run("digits", "vae", "test", [3], t=10)
    with pytest.raises(GenclfError, match="needs ddpm"):
        denoise.strip("digits", "vqvae", "test", 3, [0, 10])
    assert denoise.run("digits", "vqvae", "test", [3], t=None).mode == "reconstruct"
    for name in ("gan", "pixels"):
        mode, why = denoise.about("digits", name)
        assert mode == "none" and ("nothing to show" in why or "no model" in why)
        with pytest.raises(GenclfError):
            denoise.run("digits", name, "test", [3], t=None)
    with pytest.raises(GenclfError, match="out of range"):
        denoise.run("digits", "ddpm", "test", [10**6], t=10)


def test_words_and_the_sweep_lookup(use_tiny_runs, tmp_path, monkeypatch):
    d = denoise.run("digits", "ddpm", "test", [0], t=50)
    imgs, caps = dfig.tiles(d)
    assert len(imgs) == 3 and caps[1] == "x_t (t=50)" and imgs[0].shape == (112, 112)  # 8x8 digits, upscaled 14x
    assert "no Timestep sweep" in dfig.status_line(d, None) and "SNR" in dfig.status_line(d, None)
    assert dfig.snr_text(1.0) == "SNR 1 (+0.0 dB)"
    blocks = features.backbone("ddpm", "digits").default_blocks()
    # a report's sweep on disk, for these very weights and blocks
    monkeypatch.setenv("GENCLF_RESULTS_DIR", str(tmp_path / "results"))
    assert dfig.sweep_accuracy("digits", "ddpm", None, 50) is None
    from genclf import experiments

    h = experiments.config_hash(features.backbone("ddpm", "digits"))
    rows = [
        {"dataset": "digits", "backbone": "ddpm", "config_hash": hh, "t": t, "blocks": "+".join(blocks), "head": "logreg",
         "shots": 5, "seed": s, "split": "val", "accuracy": acc + s / 100, "time": "2026-01-01T00:00:00"}
        for hh, t, acc in ((h, 10, 0.5), (h, 100, 0.7), ("0" * 16, 50, 0.99), (h, "10+100", 0.9)) for s in (0, 2)
    ]  # fmt: skip
    (tmp_path / "results" / "digits").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "results" / "digits" / "timestep.csv", index=False)
    at, acc, source = dfig.sweep_accuracy("digits", "ddpm", None, 50)
    assert (at, round(acc, 1)) == (10, 51.0) and "genclf report" in source  # nearest swept t; other weights ignored
    assert dfig.sweep_accuracy("digits", "ddpm", ["mid_block"], 50) is None  # other blocks: not this sweep
    # this session's Timestep sweep wins over the report
    params = (("dataset", "digits"), ("backbone", "ddpm"), ("blocks", None), ("grid", (50,)))
    views._REMEMBERED[("sweep_t", params)] = {
        "curve": [{"candidate": 50, "accuracy": 0.8}, {"candidate": [10, 50], "accuracy": 0.9}], "head": "knn", "shots": 3
    }  # fmt: skip
    assert dfig.sweep_accuracy("digits", "ddpm", None, 50, params) == (50, 80.0, "Timestep sweep, knn, 3 shots")
    assert "t=50 · SNR" in dfig.status_line(d, (50, 80.0, "x")) and "validation accuracy **80.0%**" in dfig.status_line(
        d, (50, 80.0, "x")
    )
    assert "nearest swept t=10 **51.0%**" in dfig.status_line(d, (10, 51.0, "x"))
    views._REMEMBERED.clear()
    fig = dfig.class_error_figure(denoise.class_error("digits", "ddpm", "test", np.arange(30), 50), 50)
    assert "t=50" in fig.layout.title.text and len(fig.data[0].x) == 10


# ------------------------------------------------------------------ AppTest: Explore panel, Timestep strip


@pytest.fixture
def app_env(use_tiny_runs, monkeypatch, tmp_path):
    for k, v in {"GENCLF_PROJECTION": "pca", "GENCLF_PRECOMPUTE": "inline", "GENCLF_NO_WARMUP": "1",
                 "GENCLF_DATASET": "digits", "GENCLF_GRID": "0,50", "GENCLF_RESULTS_DIR": str(tmp_path / "results"),
                 "GENCLF_DATA_DIR": str(tmp_path / "data")}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    views._REMEMBERED.clear()
    explore.compute(explore.View("digits", "ddpm", t=50, n=views.DEFAULT_N, method="pca"))
    return tmp_path


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _panel_images(at: AppTest) -> list[tuple[str, str]]:
    """(caption, media url) of every image in the denoising panel."""
    pairs = [(c, u) for el in at.get("image") for c, u in zip(el.captions, el.value)]
    return [(c, u) for c, u in pairs if c.startswith(("x₀", "x_t", "x̂₀", "reconstruction"))]


def test_explore_panel_follows_t(app_env):
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.session_state["explore_sel"] = [4]  # what a click on a point sets
    at.run()
    _ok(at)
    first = _panel_images(at)
    assert [c for c, _ in first] == ["x₀ (clean)", "x_t (t=50)", first[2][0]] and first[2][0].startswith("x̂₀")
    assert any("t=50 · SNR" in c.value and "no Timestep sweep" in c.value for c in at.caption)
    at.number_input(key="explore_custom").set_value(500)  # "Custom t": any t, computed on request
    at.button(key="explore_custom_go").click().run()
    _ok(at)
    later = _panel_images(at)
    assert later[1][0] == "x_t (t=500)" and later[0][1] == first[0][1]  # x0 stays, x_t and x̂0 change
    assert later[1][1] != first[1][1] and later[2][1] != first[2][1]
    at.session_state["explore_sel"] = [0, 5, 9]  # a lasso: the per-class error chart appears
    at.run()
    _ok(at)
    assert any(c.proto.spec and "per class" in c.proto.spec for c in at.get("plotly_chart"))


def test_explore_panel_for_backbones_without_t(app_env):
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.selectbox(key="backbone_label").set_value("vae").run()  # the view lives in the URL: pick it as a user does
    at.session_state["explore_sel"] = [2]
    at.run()
    _ok(at)
    assert [c for c, _ in _panel_images(at)][1].startswith("reconstruction")
    at.selectbox(key="backbone_label").set_value("gan").run()
    at.session_state["explore_sel"] = [2]
    at.run()
    _ok(at)
    assert not _panel_images(at) and any("nothing to show" in c.value for c in at.caption)
