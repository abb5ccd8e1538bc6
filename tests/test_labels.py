"""Plain words in the dashboard (issue 11): technical names (block names, `fingerprint`, `folder:` paths, raw backbone
names) never reach a label a stakeholder reads; they stay in the help. Unit tests of genclf.app.labels, and AppTest
runs of the sidebar, the Explore chart title, the Models page and the Data page that read every visible string."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from streamlit.testing.v1 import AppTest

from genclf import data, explore
from genclf.app import labels, views
from genclf.backbones import BACKBONES, get

APP = str(Path(__file__).resolve().parent.parent / "app.py")
FMNIST = Path("/usr/share/datasets/fashion-mnist")
# what must not be read outside a help text: block names, internal terms, folder paths, lower-case backbone names
RAW = re.compile(
    r"mid_block|up_blocks|down_blocks|\b(enc|dec|d|g)\.\d|\bz_[eq]\b|\bmu\b|\blayer\d\b|\bstem\b|fingerprint|"
    r"[Pp]rocrustes|folder:|\b(ddpm|vqvae|simclr)\b"
)
HIDDEN = {"help", "id", "formId", "url", "src", "spec", "data", "default", "value", "setValue", "labelVisibility"}


def _strings(d) -> list[str]:
    """Every string a user can read in a proto dict (help texts and ids left out)."""
    if isinstance(d, str):
        return [d]
    if isinstance(d, dict):
        return [s for k, v in d.items() if k not in HIDDEN for s in _strings(v)]
    if isinstance(d, list):
        return [s for v in d for s in _strings(v)]
    return []


def _visible(node) -> list[str]:
    """The readable strings of an AppTest subtree: labels, options, captions, markdown, expander titles."""
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None and type(node).__name__ not in ("Json", "Code"):  # config.json is the technical view
        out += _strings(MessageToDict(proto))
    for child in (getattr(node, "children", None) or {}).values():
        out += _visible(child)
    return out


def _raw(texts: list[str]) -> list[str]:
    return [t for t in texts if RAW.search(t)]


# ------------------------------------------------------------------ labels


def test_every_block_of_every_backbone_has_a_plain_name():
    shape = (1, 8, 8)
    for name in BACKBONES:
        bb = get(name).from_preset("tiny", shape) if "tiny" in getattr(get(name), "PRESETS", {}) else None
        names = bb.block_names() if bb is not None else []
        for b in names + [f"{n}@2" for n in names]:
            plain = labels.block(b)
            assert plain != b and not RAW.search(plain), (name, b, plain)
            assert f"`{b}`" in labels.block_help(b)  # the technical name stays in the help
    assert labels.block("mid_block") == "bottleneck" and labels.block("up_blocks.0") == "first decoder block"
    assert labels.block("layer1") == "first encoder stage" and labels.block("mid_block@7") == "bottleneck, 7×7 grid"
    assert "`mid_block`" in labels.blocks_help(["mid_block", "up_blocks.0"])


def test_datasets_backbones_terms_and_task_steps_in_plain_words():
    assert labels.dataset("folder:data/uploads/my-shoes") == "my-shoes (upload)"
    assert labels.dataset("folder:/home/me/pics/") == "pics (folder)"
    assert labels.dataset("fashion-mnist") == "Fashion-MNIST"
    assert labels.backbone("runs/fashion-mnist/ddpm") == "DDPM" and labels.backbone("vae (run)") == "VAE (run)"
    assert labels.term("fingerprint") == "data ID" and "fingerprint" in labels.term_help("fingerprint")
    assert labels.step("ddpm t=10 · features of 2,000 test images") == "DDPM t=10 · features of 2,000 test images"
    assert labels.step("starting") == "starting"
    assert labels.samples_caption("vae") != labels.samples_caption("ddpm")
    assert "augmented" in labels.samples_caption("simclr", BACKBONES["simclr"].samples_caption)


def test_explore_titles_name_the_backbone_in_plain_words():
    v = explore.View("digits", "runs/digits/vqvae", None, None, 1000)
    shown = views.Shown(None, "ready", None, "pca")
    assert views.view_title(v, shown) == "VQ-VAE · PCA"
    d = explore.View("fashion-mnist", "ddpm", 50, None, 1000, method="umap")
    assert views.view_title(d, views.Shown(None, "nearest", 10, "umap")) == "DDPM · t=10 (t=50 computing) · UMAP"
    assert views.view_title(d, None) == "DDPM · UMAP"


# ------------------------------------------------------------------ the pages (AppTest)


@pytest.fixture
def app_env(use_tiny_runs, monkeypatch, tmp_path):
    for k, v in {"GENCLF_PROJECTION": "pca", "GENCLF_PRECOMPUTE": "inline", "GENCLF_NO_WARMUP": "1",
                 "GENCLF_DATASET": "digits", "GENCLF_GRID": "0,50", "GENCLF_RESULTS_DIR": str(tmp_path / "results"),
                 "GENCLF_DATA_DIR": str(tmp_path / "data"), "GENCLF_AUTOPREPARE": "0"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    views._REMEMBERED.clear()
    explore.layouts._MEMO.clear()
    return tmp_path


def _open(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(f"ui/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_sidebar_explore_title_models_and_data_read_plain_words(app_env):
    at = _open()
    blocks = at.multiselect(key="blocks::digits::ddpm")
    assert blocks.options[:3] == ["first encoder block", "second encoder block", "bottleneck"]
    assert blocks.value == ["mid_block", "up_blocks.0"]  # the app still works with the technical names
    assert "`mid_block`" in blocks.help and "`up_blocks.0`" in blocks.help
    bb = at.selectbox(key="backbone_label")
    assert bb.options == ["DDPM", "VAE", "VQ-VAE", "GAN", "raw pixels"] and bb.value == "ddpm" and "`vqvae`" in bb.help
    assert at.selectbox(key="dataset").options[-1] == "digits (8×8)"
    assert not _raw(_visible(at.sidebar)), _raw(_visible(at.sidebar))
    chart = next(e for e in at.get("plotly_chart"))
    title = json.loads(chart.proto.spec)["layout"]["title"]["text"]
    assert title.startswith("DDPM · t=50") and not RAW.search(title), title
    blocks.set_value(["up_blocks.1"]).run()
    assert at.query_params["blocks"] == "up_blocks.1"  # the URL keeps the technical name

    at = _open("models")
    seen = _visible(at.main)
    assert not _raw(seen), _raw(seen)
    assert any("**VQ-VAE** (run)" in s for s in seen)
    assert any("`vqvae`" in c.help for c in at.caption if c.help) and any("learned codebook" in s for s in seen)

    at = _open("datasets")
    seen = _visible(at.main)
    assert not _raw(seen), _raw(seen)
    caption = next(c for c in at.caption if "data ID" in c.value)
    assert "`fingerprint`" in caption.help and "digits (8×8)" in caption.value


def test_an_upload_is_named_by_its_folder_in_the_sidebar_and_on_the_data_page(app_env):
    up = data.data_dir() / "uploads" / "my-shoes"
    for c in ("boot", "sandal"):
        (up / c).mkdir(parents=True)
    from PIL import Image

    for c in ("boot", "sandal"):
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(up / c / f"{i}.png")
    at = _open("datasets")
    assert "my-shoes (upload)" in at.selectbox(key="dataset").options
    assert not any("folder:" in s for s in _visible(at.sidebar) + _visible(at.main))


@pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist")
def test_models_page_captions_simclr_views_and_neighbours(app_env, monkeypatch):
    monkeypatch.setenv("GENCLF_DATASET", "fashion-mnist")
    at = _open("models", dataset="fashion-mnist")  # Explore first: its default view's layout ships
    caps = set(_visible(at.main))  # the images' captions among them
    assert BACKBONES["simclr"].samples_caption in caps  # augmented views, not "reconstructions"
    assert labels.NEIGHBOURS_CAPTION in caps
    assert labels.SAMPLES["ddpm"] in caps and labels.SAMPLES["vae"] in caps
    assert not _raw(_visible(at.main)), _raw(_visible(at.main))
