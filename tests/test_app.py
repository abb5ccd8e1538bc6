"""AppTest smoke tests of every page (tiny backbones on `digits`, PCA, a prefilled cache) and the page helpers."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from genclf import explore, features
from genclf.app import figures, tables, views
from genclf.data import upload
from genclf.errors import GenclfError

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def app_env(use_tiny_runs, monkeypatch, tmp_path):
    for k, v in {"GENCLF_PROJECTION": "pca", "GENCLF_PRECOMPUTE": "inline", "GENCLF_NO_WARMUP": "1",
                 "GENCLF_DATASET": "digits", "GENCLF_GRID": "0,50,500", "GENCLF_RESULTS_DIR": str(tmp_path / "results"),
                 "GENCLF_DATA_DIR": str(tmp_path / "data"), "GENCLF_AUTOPREPARE": "0"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    views._REMEMBERED.clear()
    explore.layouts._MEMO.clear()  # in-memory layouts and features outlive a test's cache dir
    features._MEMO.clear()
    # prefill: the default Explore view is on disk before the page opens
    explore.compute(explore.View("digits", "ddpm", t=50, n=views.DEFAULT_N, method="pca"))
    return tmp_path


def _open(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    if page:
        at.switch_page(f"ui/{page}.py").run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _charts(at: AppTest) -> list:
    return [e for e in at.main if getattr(e, "key", "") and str(e.key).startswith("explore_chart")] or [
        e for e in at.get("plotly_chart")
    ]


def _title(at: AppTest) -> str:
    """The title of the first Explore chart (from the plotly spec the page sent)."""
    import json

    return json.loads(_charts(at)[0].proto.spec)["layout"]["title"]["text"]


def test_frame_sidebar_and_explore(app_env):
    at = _open()
    assert at.title[0].value == "Explore" and at.caption[0].value.startswith("Each dot")
    assert at.selectbox(key="dataset").value == "digits" and at.selectbox(key="backbone_label").value == "ddpm"
    assert "raw pixels" in at.selectbox(key="backbone_label").options  # plain names (issue 11)
    assert not at.button or not any(b.label == "Project the images" for b in at.button)  # no click needed
    assert any("360 of 360" in c.value for c in at.caption)  # the point count is always shown
    at.select_slider(key="explore_t").set_value(500).run()
    _ok(at)
    assert at.query_params["t"] == "500" and "t=500" in _title(at)
    at.segmented_control(key="explore_dim").set_value("3D").run()
    _ok(at)
    at.segmented_control(key="explore_dim").set_value("2D").run()
    at.selectbox(key="explore_mode").set_value("timesteps").run()
    _ok(at)
    assert at.select_slider(key="explore_t2").value == 300 or at.query_params["t2"] == "300"
    at.session_state["explore_sel"] = [0, 5, 9]  # what a lasso in either chart sets
    at.run()
    _ok(at)
    assert any("3 selected" in s.value for s in at.subheader)
    at.selectbox(key="explore_mode").set_value("backbones").run()
    _ok(at)


def test_a_t_that_is_not_ready_snaps_to_a_ready_one_then_follows(app_env, monkeypatch):
    import threading
    import time

    monkeypatch.setenv("GENCLF_PRECOMPUTE", "thread")
    svc, gate = explore.Service("thread"), threading.Event()
    real = svc._do
    monkeypatch.setattr(svc, "_do", lambda v: (gate.wait(120), real(v)))
    monkeypatch.setattr(explore.precompute, "_SERVICE", svc)
    at = _open()
    slider = at.select_slider(key="explore_t")
    assert slider.value == 50 and list(slider.options) == ["0", "50✓", "500"]  # the grid, ready t marked
    slider.set_value(500).run()
    _ok(at)
    assert at.session_state["explore_t_wanted"] == 500 and at.query_params["t"] == "50"  # snapped; 500 goes first
    assert any(v.t == 500 for v, st in svc._state.items() if st in ("queued", "running"))
    gate.set()
    deadline = time.time() + 120
    while svc.pending() and time.time() < deadline:
        time.sleep(0.2)
    at.run()  # the background fragment sees 500 ready and shows it
    _ok(at)
    assert at.query_params["t"] == "500" and at.select_slider(key="explore_t").value == 500


def test_play_animates_through_the_ready_timesteps(app_env):
    import json

    at = _open()
    at.run()  # the (inline) background grid is ready now
    at.toggle(key="explore_play").set_value(True).run()
    _ok(at)
    spec = json.loads(_charts(at)[0].proto.spec)
    assert [f["name"] for f in spec["frames"]] == ["0", "50", "500"]  # one frame per ready t, played in the browser
    assert spec["layout"]["updatemenus"][0]["buttons"][0]["method"] == "animate"
    # it opens at the t shown (50 here), not at the first frame, and Play goes on from there
    assert spec["layout"]["sliders"][0]["active"] == 1 and "t=50" in json.dumps(spec["layout"]["title"])
    assert spec["layout"]["updatemenus"][0]["buttons"][0]["args"][1]["fromcurrent"] is True


def test_explore_needs_no_click_then_backbone_without_t(app_env):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["backbone"] = "vae"  # nothing cached for vae: computed by the (inline) service, no button
    at.run()
    _ok(at)
    assert "explore_t" not in [s.key for s in at.select_slider]
    assert not any(b.label == "Project the images" for b in at.button)
    assert any("360 of 360" in c.value for c in at.caption)


def test_the_url_reproduces_the_view_and_t_is_shared_with_fewshot(app_env):
    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in {"t": "0", "dim": "3D", "proj": "pca", "mode": "timesteps", "t2": "500", "seed": "3"}.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    assert at.select_slider(key="explore_t").value == 0 and at.segmented_control(key="explore_dim").value == "3D"
    assert at.selectbox(key="explore_mode").value == "timesteps" and at.select_slider(key="explore_t2").value == 500
    assert at.number_input(key="seed").value == 3
    want = {"dataset": "digits", "backbone": "ddpm", "t": "0", "dim": "3D", "proj": "pca", "mode": "timesteps", "t2": "500"}
    assert want.items() <= dict(at.query_params).items()  # the URL says everything, defaults included
    at.switch_page("ui/fewshot.py").run()
    _ok(at)
    assert at.slider(key="fs_t").value == 0  # Few-shot trains at the t shown on Explore
    at.slider(key="fs_t").set_value(500)
    at.button[0].click().run()  # ... unless changed there: then it is the shared t
    _ok(at)
    assert dict(at.session_state["fewshot_runs"][-1]["params"])["t"] == 500
    at.switch_page("ui/explore.py").run()
    _ok(at)
    assert at.select_slider(key="explore_t").value == 500 and at.segmented_control(key="explore_dim").value == "3D"
    assert at.query_params["t"] == "500"


def test_custom_t_is_computed_on_request(app_env):
    at = _open()
    at.number_input(key="explore_custom").set_value(123)
    [b for b in at.button if b.label == "Show this t"][0].click().run()
    _ok(at)
    # off the grid: the slider shows the very t the chart shows (not the nearest grid t), and says it is a custom one
    assert at.query_params["t"] == "123" and at.select_slider(key="explore_t").value == 123
    assert any("t=123 is a custom t" in c.value for c in at.caption)
    at.select_slider(key="explore_t").set_value(50).run()  # back onto the grid: the custom t leaves the slider
    _ok(at)
    assert at.query_params["t"] == "50" and "123" not in at.select_slider(key="explore_t").options
    assert explore.layout(explore.View("digits", "ddpm", t=123, n=views.DEFAULT_N, method="pca")) is not None


def test_fewshot_trains_and_keeps_history(app_env):
    at = _open("fewshot")
    assert at.title[0].value == "Few-shot"
    at.button[0].click().run()
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"].endswith("%") and metrics["Pixel baseline, same shots"].endswith("%")
    assert not any(m.value.startswith("**Misclassified") for m in at.markdown)  # details only when asked for
    at.toggle(key="fs_details").set_value(True).run()
    _ok(at)
    assert any(m.value.startswith("**Misclassified") for m in at.markdown)
    at.radio[0].set_value("representative")
    at.button[0].click().run()
    _ok(at)
    assert any("representative picks" in m.value for m in at.markdown)
    assert len(at.session_state["fewshot_runs"]) == 2


def test_fewshot_too_many_shots_shows_the_remedy(app_env):
    folder = app_env / "data" / "uploads" / "small"  # an uploaded folder dataset, 12 images per class
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(np.full((8, 8), 10 * i + (100 if c == "a" else 0), np.uint8)).save(folder / c / f"{i}.png")
    at = _open()
    at.selectbox(key="dataset").set_value(f"folder:{folder}").run()
    at.switch_page("ui/fewshot.py").run()
    assert at.selectbox(key="backbone_label").value == "pixels"
    at.number_input[0].set_value(50)
    at.button[0].click().run()
    assert not at.exception
    assert at.error and "use k <=" in at.error[0].value, [e.value for e in at.error]


def test_timestep_shows_the_prepared_sweep_at_once_and_sends_t(app_env):
    from genclf.app import prepare

    prepare.sweep(prepare.sweep_params("digits", "ddpm", shots=2, seeds=1, grid=[0, 50, 500]))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("ui/timestep.py")
    at.session_state["sweep_params"] = prepare.sweep_params("digits", "ddpm", shots=2, seeds=1, grid=[0, 50, 500])
    at.run()
    _ok(at)
    best = int(at.metric[0].value)
    assert best in (0, 50, 500)
    [b for b in at.button if b.label.startswith("Use t=")][0].click().run()
    _ok(at)
    assert at.query_params["t"] == str(best) and at.title[0].value == "Explore"


def test_timestep_sweep_runs_in_the_background(app_env):
    import time

    from genclf.app import prepare, tasks

    at = _open("timestep")
    assert any("Run the sweep" in i.value for i in at.info)  # nothing computed yet: the page says what to do
    at.multiselect[0].set_value([0, 500])
    at.number_input[1].set_value(1)
    at.button[0].click().run()
    _ok(at)
    params = at.session_state["sweep_params"]
    task = tasks.find("sweep", params)
    assert task is not None and task.kind == "sweep"  # a background process, not this script run
    deadline = time.time() + 240
    while prepare.sweep_cached(params) is None and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    _ok(at)
    assert int(at.metric[0].value) in (0, 500)


def test_timestep_without_t_explains(app_env):
    at = _open()
    at.selectbox(key="backbone_label").set_value("vae").run()
    at.switch_page("ui/timestep.py").run()
    _ok(at)
    assert "no timestep" in at.info[0].value


def test_compare_computes_and_reads_saved_results(app_env):
    at = _open("compare")
    at.multiselect[0].set_value(["vae", "pixels"])
    at.multiselect[1].set_value([1, 5])
    at.number_input[0].set_value(1)
    at.button[0].click().run()
    _ok(at)
    assert len(at.dataframe) == 1 and "best generative (chosen on validation)" in at.dataframe[0].value.index
    assert any("points at" in m.value and "VAE" in m.value for m in at.markdown)  # the headline: the paired lead
    at.multiselect(key="compare_lines").set_value(["vae + logreg"]).run()  # the picker adds a line
    _ok(at)
    assert "VAE + logistic regression" in at.dataframe[0].value.index
    at.toggle(key="compare_present").set_value(True).run()
    _ok(at)
    assert not at.title  # presentation view: chart and table only
    exports = {b.proto.label: b.proto for b in at.get("download_button")}
    assert {"Slide PNG", "One-page HTML report", "One-page PDF report"} <= set(exports)
    # saved results (genclf report's CSVs) become the default source
    d = app_env / "results" / "digits"
    d.mkdir(parents=True)
    d.joinpath("eval.csv").write_text(
        "dataset,backbone,head,shots,seed,strategy,split,accuracy,baseline_accuracy\n"
        "digits,vae,logreg,1,0,random,test,0.5,0.4\ndigits,vae,logreg,1,1,random,test,0.6,0.45\n"
        "digits,vae,logreg,1,0,random,val,0.9,\n"
    )
    at = _open("compare")
    assert at.radio[0].value == "saved"
    assert at.dataframe[0].value.loc["VAE + logistic regression", 1] == "55.0 ± 5.0"  # no validation runs: every line


def test_compare_computes_at_the_shared_t(app_env):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["t"] = "0"  # the t shown on Explore (and Few-shot), e.g. from a shared link
    at.run()
    at.switch_page("ui/compare.py").run()
    at.multiselect[0].set_value(["pixels"])
    at.multiselect[1].set_value([1])
    at.number_input[0].set_value(1)
    at.button[0].click().run()
    _ok(at)
    assert dict(at.session_state["compare_params"])["t"] == 0


def test_models_and_data_pages(app_env):
    at = _open("models")
    assert at.title[0].value == "Models" and len(at.expander) == 4  # the tiny ddpm, vae, vqvae, gan runs
    at.selectbox(key="train_preset").set_value("tiny")
    at.button[-1].click().run()  # Start training: a vae run already exists here
    assert not at.exception and "replace the existing model" in at.error[0].value
    at = _open("datasets")
    assert at.title[0].value == "Data"
    assert {m.label for m in at.metric} >= {"Classes", "Test"}


# ------------------------------------------------------------------ helpers behind the pages


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return buf.getvalue()


def _png(v: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((10, 10, 3), v, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_import_zip_makes_a_folder_dataset_and_reports_bad_files(app_env):
    files = {f"shoes/{c}/{i}.png": _png(20 * i) for c in ("boot", "sandal") for i in range(6)}
    files["shoes/boot/broken.png"] = b"not a png"
    files["shoes/boot/notes.txt"] = b"hello"
    files["shoes/stray.png"] = _png(1)
    files["__MACOSX/shoes/._x.png"] = b"junk"
    rep = upload.import_zip(_zip(files), "shoes")
    assert rep.counts == {"boot": 6, "sandal": 6}
    assert dict(rep.bad) == {
        "shoes/boot/broken.png": "unreadable image (UnidentifiedImageError)",
        "shoes/boot/notes.txt": "not an image file",
        "shoes/stray.png": "not inside a class folder",
    }
    assert rep.dataset in views.dataset_choices()
    with pytest.raises(GenclfError, match="already exists"):
        upload.import_zip(_zip(files), "shoes")


@pytest.mark.parametrize(
    ("name", "remedy"),
    [
        ("../evil.png", "leaves its folder"),
        ("/etc/evil.png", "absolute path"),
        ("a/../../evil.png", "leaves its folder"),
        ("C:/x/evil.png", "absolute path"),
    ],
)
def test_import_zip_rejects_zip_slip(app_env, name, remedy):
    with pytest.raises(GenclfError, match=remedy):
        upload.import_zip(_zip({"a/1.png": _png(1), name: _png(2)}), "slip")
    assert not (app_env / "data" / "uploads" / "slip").exists()
    assert not (app_env / "evil.png").exists()


def test_import_zip_limits(app_env):
    with pytest.raises(GenclfError, match="larger than"):
        upload.import_zip(b"x" * 3000, "big", max_bytes=2000)
    with pytest.raises(GenclfError, match="not a zip"):
        upload.import_zip(b"hello", "nozip")
    with pytest.raises(GenclfError, match="not allowed"):
        upload.import_zip(_zip({"a/1.png": _png(1)}), "../up")
    with pytest.raises(GenclfError, match="two subfolders"):
        upload.import_zip(_zip({"a/1.png": _png(1)}), "oneclass")


def test_curves_table_and_png():
    import pandas as pd

    rows = pd.DataFrame(
        {
            "backbone": ["ddpm"] * 4,
            "head": "logreg",
            "shots": [1, 1, 5, 5],
            "seed": [0, 1, 0, 1],
            "strategy": "random",
            "accuracy": [0.5, 0.6, 0.7, 0.8],
            "baseline_accuracy": [0.4, 0.5, 0.6, 0.6],
        }
    )
    t = tables.curves_table(rows)
    got = t.set_index(["method", "shots"])["mean"]
    assert got[("ddpm + logreg", 1)] == pytest.approx(55) and got[("pixels + logreg (baseline)", 5)] == pytest.approx(60)
    assert figures.curves_png(t).startswith(b"\x89PNG")
    assert len(figures.curves_figure(t).data) == 4  # a band and a line per method


def test_linked_selection_survives_redraws():
    sel, seen = views.linked_selection([[1, 2]], [], [])
    assert sel == [1, 2]
    sel, seen = views.linked_selection([[1, 2], []], seen, sel)  # a second chart appears, empty
    assert sel == [1, 2]
    sel, seen = views.linked_selection([[1, 2], [7]], seen, sel)  # picked in the second chart
    assert sel == [7]
    sel, seen = views.linked_selection([[], [7]], seen, sel)  # the first chart was redrawn (new t)
    assert sel == [7] and seen == [[], [7]]


def test_selection_helpers():
    assert views.selected_positions({"selection": {"points": [{"customdata": [3, 99]}, {"customdata": [1, 7]}]}}) == [1, 3]
    assert views.selected_positions(None) == []
    assert views.selected_positions({"selection": {"points": [{"customdata": {"0": 4, "1": 12}}]}}) == [4]
    x = np.eye(6, dtype=np.float32) + 0.01
    x[1] = x[0] + 0.001
    assert views.neighbours(x, [0], k=1)[0, 0] == 1


def test_explore_search_colour_images_and_export(app_env):
    at = _open()
    tools = lambda: [e for e in at.expander if e.label == "Colour, search and filter"][0].proto.expanded  # noqa: E731
    assert at.selectbox(key="explore_color").options == ["true class"]  # no Few-shot run yet: nothing else to colour by
    assert not tools()  # folded until a tool is used
    at.text_input(key="explore_search").set_value("1-40").run()
    _ok(at)
    assert tools()
    at.text_input(key="explore_search").set_value("").run()  # cleared, to pick a class next: it stays open
    assert tools()
    at.text_input(key="explore_search").set_value("1-40").run()
    assert any("points match" in c.value for c in at.caption)
    spec = json.loads(_charts(at)[0].proto.spec)
    assert spec["data"][0]["name"] == "not matching"
    assert any("**40** of 360 points match" in c.value for c in at.caption)  # digits' test images 1..40
    at.toggle(key="explore_images").set_value(True).run()
    _ok(at)
    assert len(json.loads(_charts(at)[0].proto.spec)["layout"]["images"]) == 40  # thumbnails of the matches only
    at.session_state["explore_sel"] = [0, 5, 9]
    at.run()
    _ok(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Selection as CSV" in labels and "Images as zip" in labels


def test_explore_colours_by_the_confidence_of_the_latest_fewshot_run(app_env):
    at = _open()
    assert at.selectbox(key="explore_color").options == ["true class"]
    assert any("press **Train** on the **Few-shot** page" in c.value for c in at.caption)  # says what to run
    at.switch_page("ui/fewshot.py").run()
    next(s for s in at.selectbox if s.label == "Head").set_value("knn")  # knn: its confidence is a similarity score
    at.button[0].click().run()
    _ok(at)
    at.switch_page("ui/explore.py").run()
    _ok(at)
    assert at.selectbox(key="explore_color").options == ["true class", "predicted class", "correct / wrong", "confidence"]
    at.selectbox(key="explore_color").set_value("confidence").run()
    _ok(at)
    assert any("Predictions from Few-shot run #1" in c.value for c in at.caption)
    spec = json.loads(_charts(at)[0].proto.spec)
    scored = [d for d in spec["data"] if d["name"] == "confidence"]
    assert len(scored) == 1 and scored[0]["marker"]["colorscale"]
    assert "confidence" in scored[0]["marker"]["colorbar"]["title"]["text"]
    conf = _array(scored[0]["marker"]["color"])
    assert ((conf > 0) & (conf <= 1)).all() and len(np.unique(conf.round(3))) > 1
    assert all("confidence" in t for t in scored[0]["text"])  # the hover says it too


def _array(v) -> np.ndarray:
    """A plotly JSON array: a list, or plotly's typed array {"dtype", "bdata" (base64)}."""
    import base64

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).astype(float)
    return np.asarray(v, float)


def test_fewshot_history_reopens_a_run_and_pixels_has_no_lead_over_itself(app_env):
    at = _open()
    at.selectbox(key="backbone_label").set_value("pixels").run()
    at.switch_page("ui/fewshot.py").run()
    at.button[0].click().run()
    _ok(at)
    assert {m.label for m in at.metric} >= {"Validation accuracy", "Test accuracy"}
    assert all(not m.proto.delta for m in at.metric)  # no "vs pixels" on pixels itself
    next(s for s in at.selectbox if s.label == "Head").set_value("knn")
    at.radio[0].set_value("representative")
    at.button[0].click().run()
    _ok(at)
    assert at.subheader[0].value.startswith("Run #2") and "on average" in at.subheader[0].value
    at.selectbox(key="fs_reopen_2").set_value(1).run()
    _ok(at)
    assert at.subheader[0].value.startswith("Run #1") and "logistic regression" in at.subheader[0].value
    hist = at.dataframe[0].value
    assert list(hist["run"]) == [1, 2] and (hist["val. lead"] == "–").all() and (hist["test lead"] == "–").all()


def test_compare_never_repeats_a_colour_however_many_pipelines(app_env):
    d = app_env / "results" / "digits"
    d.mkdir(parents=True)
    rows = ["dataset,backbone,head,shots,seed,strategy,split,accuracy,baseline_accuracy"]
    for i, (bb, head) in enumerate(
        (b, h) for b in ("pixels", "vae", "ddpm", "gan", "vqvae") for h in ("logreg", "linear", "mlp", "knn")
    ):
        rows += [f"digits,{bb},{head},{k},0,random,test,{0.4 + 0.01 * i + 0.01 * k},0.4" for k in (1, 5)]
    d.joinpath("eval.csv").write_text("\n".join(rows) + "\n")  # 20 pipelines, no validation runs
    at = _open("compare")
    _ok(at)
    lines = at.multiselect(key="compare_lines")
    assert len(lines.value) == len(figures.LINES) - 1 and lines.proto.max_selections == len(figures.LINES) - 1
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    colours = [tr["line"]["color"] for tr in spec["data"] if tr.get("mode") == "lines+markers"]
    assert len(colours) == len(figures.LINES) and len(set(colours)) == len(colours)


def _rival_rows():
    """Saved-report rows: ddpm and simclr + logreg on the same seeds; ddpm 10 points ahead at k=1 (on each seed), level
    on average at k=50; ddpm's validation runs make it the chosen pipeline."""
    import pandas as pd

    rows, spread = [], (0.01, -0.01, 0.02, -0.02)  # k=50: simclr a little above or below ddpm, 0 on average
    for k, gap in ((1, 0.10), (50, 0.0)):
        for s in range(4):
            jitter = 0.01 * s
            rows += [{"dataset": "digits", "backbone": "ddpm", "head": "logreg", "shots": k, "seed": s, "strategy": "random",
                      "split": "test", "accuracy": 0.6 + gap + jitter, "baseline_accuracy": 0.5},
                     {"dataset": "digits", "backbone": "simclr", "head": "logreg", "shots": k, "seed": s,
                      "strategy": "random", "split": "test", "accuracy": 0.6 + jitter + (0 if k == 1 else spread[s]),
                      "baseline_accuracy": 0.5}]  # fmt: skip
            rows.append({"dataset": "digits", "backbone": "ddpm", "head": "logreg", "shots": k, "seed": 1000 + s,
                         "strategy": "random", "split": "val", "accuracy": 0.7, "baseline_accuracy": 0.5})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_lead_over_the_contrastive_rival_is_paired_and_only_claimed_outside_the_noise():
    rows = _rival_rows()
    table = tables.curves_table(rows)
    assert tables.rivals(table) == ["simclr + logreg"]  # pixels and the CNN are baselines, not rivals
    diff = tables.paired_diff(rows, "ddpm + logreg", "simclr + logreg").set_index("shots")
    assert diff.loc[1, "lead"] == pytest.approx(10.0) and diff.loc[1, "pairs"] == 4
    assert diff.loc[1, "lead_ci95"] == pytest.approx(0.0, abs=1e-9)  # the same gap on every seed
    assert diff.loc[50, "lead"] == pytest.approx(0.0, abs=1e-9) and diff.loc[50, "lead_ci95"] > 0
    text = tables.diff_sentence(diff.reset_index(), "DDPM", "SimCLR")
    assert "DDPM leads SimCLR at k = 1;" in text and "tie at k = 50" in text and "trails" not in text


def test_compare_shows_the_paired_lead_over_simclr(app_env):
    d = app_env / "results" / "digits"
    d.mkdir(parents=True)
    _rival_rows().to_csv(d / "runs.csv", index=False)
    at = _open("compare")
    _ok(at)
    assert at.radio[0].value == "saved"
    rival = [df.value for df in at.dataframe if any("−" in str(i) for i in df.value.index)]
    assert len(rival) == 1 and rival[0].iloc[0][1] == "+10.0 ± 0.0" and rival[0].iloc[1][1] == "4"
    assert any("leads" in c.value and "tie at k = 50" in c.value for c in at.caption)


def test_a_validation_lead_is_coloured_only_outside_the_noise():
    assert tables.lead_delta(7.9, 4.9) == ("+7.9 ± 4.9 pts vs pixels", "normal")
    assert tables.lead_delta(-3.0, 1.0)[1] == "normal"  # a clear loss is shown as one (red)
    assert tables.lead_delta(2.3, 11.1) == ("+2.3 ± 11.1 pts, within noise", "off")
    assert tables.lead_delta(2.3, float("nan"))[1] == "off"  # one seed: no interval, no colour
