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
    assert {"ddpm", "vae", "vqvae", "gan", "simclr", "pixels"} <= set(ALL)


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
    key = {"ddpm": "block_out_channels", "vae": "width", "vqvae": "width", "gan": "d_width", "simclr": "width"}[name]
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


SHIPPED_DIMS = {"ddpm": 2048, "vae": 288, "vqvae": 1024, "gan": 6144, "simclr": 128}


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


# ---- simclr: the contrastive competitor (views, loss, what is exported)


def test_simclr_views_are_seeded_and_in_range():
    import torch

    from genclf.backbones.ops import to_unit

    bb = get("simclr").from_preset("tiny", (3, 16, 16))
    x = to_unit(np.random.default_rng(0).integers(0, 256, (6, 3, 16, 16), dtype=np.uint8))
    a = bb.augment(x, torch.Generator().manual_seed(1), True)
    b = bb.augment(x, torch.Generator().manual_seed(1), True)
    c = bb.augment(x, torch.Generator().manual_seed(2), True)
    assert a.shape == (12, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a[:6], a[6:])  # the two views of an image differ


def test_nt_xent_matches_its_closed_form():
    import math

    import torch

    from genclf.backbones.simclr import nt_xent

    n, tau = 4, 0.5
    e = torch.eye(n)
    # views of one image coincide and images are orthogonal: positive similarity 1, negatives 0
    want = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * n - 2))
    assert nt_xent(torch.cat([e, e]), tau).item() == pytest.approx(want, rel=1e-5)
    # swapping the pairing makes the positives orthogonal: a higher loss
    assert nt_xent(torch.cat([e, e.roll(1, 0)]), tau).item() > want + 1


def test_simclr_steps_lower_the_loss_and_export_only_the_encoder(tiny_images, tmp_path):
    import torch

    from genclf.backbones.ops import to_unit
    from genclf.backbones.simclr import nt_xent

    bb = get("simclr").from_preset("tiny", tiny_images.shape[1:])
    opts = bb.make_optimizers(1e-2)
    x = bb.augment(to_unit(tiny_images[:16]), torch.Generator().manual_seed(0), True)
    before = {k: v.clone() for k, v in bb.encoder.state_dict().items()}
    losses = [bb.train_step(x, opts, torch.Generator(), s)["loss"] for s in range(20)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert any(not torch.equal(before[k], v) for k, v in bb.encoder.state_dict().items())
    bb.encoder.eval()
    bb.head.eval()
    with torch.no_grad():
        assert nt_xent(bb.head(bb.encoder(x)), bb.config.temperature).item() < losses[0]
    keys = bb.state_tensors().keys()
    assert keys and all(k.startswith("encoder.") for k in keys)  # the projection head is not shipped
    assert any(k.startswith("head.") for k in bb.state_tensors(export=False))  # but it is checkpointed


def test_simclr_blocks_and_grids(tiny_images):
    bb = get("simclr").from_preset("tiny", tiny_images.shape[1:])
    assert bb.block_names() == ["stem", "layer1", "layer2"]
    assert bb.features(tiny_images[:4]).shape == (4, 8)  # layer2, globally pooled
    assert bb.features(tiny_images[:4], blocks=["layer1@2", "layer2"]).shape == (4, 4 * 4 + 8)
    with pytest.raises(GenclfError, match="has no timestep"):
        bb.features(tiny_images[:2], 10)


def test_simclr_samples_are_views_and_neighbours_find_themselves(tiny_images):
    from genclf.backbones.simclr import nearest_neighbours, neighbour_grid

    bb = get("simclr").from_preset("tiny", tiny_images.shape[1:])
    s = bb.samples(10, images=tiny_images, cols=4)
    assert s.dtype == np.uint8 and s.shape == (30, 1, 8, 8)
    np.testing.assert_array_equal(s[:4], tiny_images[:4])  # a band: four images, then their two views
    np.testing.assert_array_equal(s[12:16], tiny_images[4:8])
    f = bb.features(tiny_images)
    assert (nearest_neighbours(f[:5], f, 1)[:, 0] == np.arange(5)).all()
    g = neighbour_grid(tiny_images[:3], f[:3], tiny_images, f, k=4)
    assert g.shape == (15, 1, 8, 8)
    np.testing.assert_array_equal(g[5], tiny_images[1])


def test_shipped_simclr_has_its_neighbour_picture():
    folder = PRETRAINED / "fashion-mnist" / "simclr"
    assert (folder / "neighbours.png").is_file()  # bench/simclr.py --neighbours; samples.png holds augmented views
    assert "simclr" in (folder / "command.txt").read_text()
