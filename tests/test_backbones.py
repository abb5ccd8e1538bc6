"""One contract suite over every registered backbone, at `tiny` scale on tiny images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genclf.backbones import BACKBONES, get, load_backbone, names
from genclf.backbones.io import PRETRAINED
from genclf.errors import GenclfError

ALL = names()
TRAINABLE = [n for n in ALL if BACKBONES[n].trainable]


def _t(bb):
    return 10 if bb.has_t else None


@pytest.fixture(params=ALL)
def fitted(request, tiny_images):
    bb = get(request.param).from_preset("tiny", tiny_images.shape[1:])
    out = bb.fit(tiny_images, seed=0, batch_size=16, max_steps=3)
    assert out is bb  # fit returns self
    return bb


def test_registry_lists_all_kinds():
    assert {"ddpm", "vae", "vqvae", "gan", "pixels"} <= set(ALL)


def test_cli_knows_every_backbone_without_importing_torch():
    from genclf.cli import BACKBONE_NAMES

    assert set(BACKBONE_NAMES) == set(ALL)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(GenclfError, match="valid backbones: .*ddpm.*gan.*pixels"):
        get("resnet")


def test_features_are_finite_float32_2d(fitted, tiny_images):
    f = fitted.features(tiny_images[:10], _t(fitted))
    assert f.dtype == np.float32 and f.ndim == 2 and f.shape[0] == 10 and f.shape[1] > 0
    assert np.isfinite(f).all()


def test_same_seed_same_features(fitted, tiny_images):
    a = fitted.features(tiny_images[:10], _t(fitted), seed=3)
    b = fitted.features(tiny_images[:10], _t(fitted), seed=3)
    np.testing.assert_array_equal(a, b)


def test_features_do_not_depend_on_batch(fitted, tiny_images):
    a = fitted.features(tiny_images[:10], _t(fitted))
    b = fitted.features(tiny_images[5:10], _t(fitted))
    np.testing.assert_allclose(a[5:], b, rtol=1e-4, atol=1e-5)


def test_save_load_roundtrip(fitted, tiny_images, tmp_path):
    fitted.save(tmp_path / "m")
    again = load_backbone(tmp_path / "m") if fitted.trainable else fitted
    np.testing.assert_array_equal(fitted.features(tiny_images[:8], _t(fitted)), again.features(tiny_images[:8], _t(fitted)))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["backbone"] == fitted.name


@pytest.mark.parametrize("name", TRAINABLE)
def test_corrupt_checkpoints_fail_clearly(name, tiny_images, tmp_path):
    bb = get(name).from_preset("tiny", tiny_images.shape[1:])
    d = bb.save(tmp_path / "m")
    weights = d / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(GenclfError, match="damaged or truncated"):
        load_backbone(d)
    weights.unlink()  # missing
    with pytest.raises(GenclfError, match="no model.safetensors"):
        load_backbone(d)
    weights.write_bytes(good)
    cfg = json.loads((d / "config.json").read_text())
    key = {"ddpm": "block_out_channels", "vae": "width", "vqvae": "width", "gan": "d_width"}[name]
    cfg["config"][key] = [8, 16] if isinstance(cfg["config"][key], list) else 8
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GenclfError, match="does not match its config.json"):
        load_backbone(d)
    cfg["config"]["bogus"] = 1
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GenclfError, match="unknown config key"):
        load_backbone(d)


def test_ddpm_features_change_with_t(tiny_images):
    bb = get("ddpm").from_preset("tiny", tiny_images.shape[1:]).fit(tiny_images, seed=0, batch_size=16, max_steps=2)
    a, b = bb.features(tiny_images[:8], 0), bb.features(tiny_images[:8], 500)
    assert not np.allclose(a, b)
    c = bb.features(tiny_images[:8], 500, seed=1)
    assert not np.allclose(b, c)  # a different noise draw


def test_t_is_checked(tiny_images):
    ddpm = get("ddpm").from_preset("tiny", tiny_images.shape[1:])
    with pytest.raises(GenclfError, match=r"outside \[0, 999\]"):
        ddpm.features(tiny_images[:2], 1000)
    with pytest.raises(GenclfError, match="needs a timestep"):
        ddpm.features(tiny_images[:2], None)
    vae = get("vae").from_preset("tiny", tiny_images.shape[1:])
    with pytest.raises(GenclfError, match="has no timestep"):
        vae.features(tiny_images[:2], 10)
    with pytest.raises(GenclfError, match="unknown block"):
        vae.features(tiny_images[:2], blocks=["nope"])


def test_wrong_channel_count_is_refused(tiny_images):
    bb = get("vae").from_preset("tiny", (3, 8, 8))
    with pytest.raises(GenclfError, match="3-channel"):
        bb.features(tiny_images[:2])


def test_unknown_preset_lists_valid():
    with pytest.raises(GenclfError, match="valid presets: tiny, small"):
        get("vae").from_preset("huge", (1, 8, 8))


SHIPPED_DIMS = {"ddpm": 2048, "vae": 288, "vqvae": 1024, "gan": 6144}


@pytest.mark.parametrize("name", sorted(SHIPPED_DIMS))
def test_shipped_weights_load_with_documented_dims(name):
    from genclf import data

    folder = PRETRAINED / "fashion-mnist" / name
    if not (folder / "model.safetensors").is_file():
        pytest.fail(f"shipped weights missing: {folder}")
    bb = load_backbone(folder)
    x = data.load("fashion-mnist").x_test[:4]
    f = bb.features(x, 50 if bb.has_t else None)
    assert f.shape == (4, SHIPPED_DIMS[name]) and np.isfinite(f).all()
    assert (folder / "command.txt").read_text().startswith("genclf train")
    assert (folder / "train_log.jsonl").is_file() and (folder / "samples.png").is_file()
    assert (folder / "model.safetensors").stat().st_size <= 8 * 1024 * 1024


def test_block_grid_suffix_sets_pooling(tiny_images):
    bb = get("vae").from_preset("tiny", tiny_images.shape[1:])
    a = bb.features(tiny_images[:4], blocks=["enc.1@1"])
    b = bb.features(tiny_images[:4], blocks=["enc.1@2"])
    assert b.shape[1] == 4 * a.shape[1]
    np.testing.assert_allclose(a, b.reshape(len(b), -1, 4).mean(-1), rtol=1e-4, atol=1e-5)  # 2x2 cells average to global
    with pytest.raises(GenclfError, match="bad pooling grid"):
        bb.features(tiny_images[:4], blocks=["enc.1@x"])
