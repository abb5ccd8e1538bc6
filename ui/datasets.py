"""Data: what each dataset holds, and turning a zip of class folders into a new dataset."""

import pandas as pd
import streamlit as st

from genclf import data
from genclf.app import labels, summaries, views
from genclf.data import upload
from ui import common

c = common.ctx()
st.title("Data")
st.caption(
    "Datasets the tool knows, whether they are on this machine, and how to get the missing ones. Labeled images are "
    "split into a pool (where the few labeled shots come from), a fixed validation split (for choosing t, blocks and "
    "heads) and the test split (only for final scores)."
)

with common.guard():
    rows = [
        {"dataset": labels.dataset(n), "on this machine": s.present(), "what": s.description,
         "to get it": "" if s.present() else s.remedy(), "technical name": n}
        for n, s in data.REGISTRY.items()
    ]  # fmt: skip
    rows += [
        {"dataset": labels.dataset(n), "on this machine": True, "what": "your images, uploaded as a zip", "to get it": "",
         "technical name": n}
        for n in views.dataset_choices()
        if n.startswith("folder:")
    ]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

    names = views.dataset_choices()
    pick = st.selectbox(
        "Inspect", names, index=names.index(c.dataset) if c.dataset in names else 0, format_func=labels.dataset
    )
    ds = data.load(pick)
    df = summaries.overview(pick)
    a, b, d, e = st.columns(4)
    a.metric("Classes", ds.n_classes)
    b.metric("Labeled pool", f"{int(df['pool'].sum()):,}")
    d.metric("Validation", f"{int(df['val'].sum()):,}")
    e.metric("Test", f"{int(df['test'].sum()):,}")
    colour = "grey" if ds.shape[0] == 1 else "colour"
    st.caption(
        f"{labels.dataset(pick)}: {ds.shape[1]}×{ds.shape[2]} {colour} images; {labels.term('fingerprint')} "
        f"`{ds.fingerprint}`; read from `{ds.source}`" + (f"; {ds.skipped} unreadable file(s) skipped" if ds.skipped else ""),
        help=f"{labels.term('fingerprint').capitalize()}: {labels.term_help('fingerprint')}.",
    )
    left, right = st.columns([1, 1])
    left.image(summaries.examples(pick), caption="the first training images of each class, one row per class", width="stretch")
    right.bar_chart(df.set_index("class")[["pool", "val", "test"]], stack=True, height=420)

st.subheader("Add a dataset from a zip")
st.caption(
    "Zip a folder holding one subfolder of images per class (optionally `unlabeled/`, or `train/` and `test/` each "
    f"holding class folders). At most {upload.UPLOAD_LIMIT // 2**20} MB, {upload.MEMBER_LIMIT // 2**20} MB per file. "
    "Images keep their size and colour: the most common image size, grey when every image is grey; set them below "
    "or in a `genclf.json` in the zip. Every class needs at least 2 images. Existing datasets are never overwritten."
)
with st.form("upload", clear_on_submit=False):
    up = st.file_uploader("Zip of class folders", type=["zip"])
    name = st.text_input("Name for the new dataset", placeholder="e.g. my-shoes")
    left, right = st.columns(2)
    mode = left.selectbox("Colour", ["auto", "L", "RGB"], format_func={"auto": "auto", "L": "grey (L)", "RGB": "RGB"}.get)
    size = right.number_input("Size in pixels (0 = the most common image size)", 0, 256, 0, step=1)
    go = st.form_submit_button("Create dataset", type="primary", icon=":material/upload:")
if go:
    with common.guard():
        if up is None or not name:
            st.error("Choose a zip file and a name first.")
        else:
            opts = {"size": int(size) or None, "mode": None if mode == "auto" else mode}
            st.session_state["upload_report"] = upload.import_zip(up, name.strip(), options=opts)
            st.rerun()  # the sidebar's dataset picker was drawn before the upload: draw it again, with the new one
if rep := st.session_state.pop("upload_report", None):
    st.success(
        f"Created **{labels.dataset(rep.dataset)}** with {sum(rep.counts.values()):,} images in {len(rep.counts)} "
        "classes. Pick it in the sidebar.",
        icon=":material/check_circle:",
    )
    st.dataframe(pd.DataFrame({"class": list(rep.counts), "images": list(rep.counts.values())}), hide_index=True)
    if rep.bad:
        st.warning(f"{len(rep.bad)} file(s) were skipped:")
        st.dataframe(pd.DataFrame(rep.bad, columns=["file in zip", "why"]), hide_index=True, width="stretch")
