"""Models: what each backbone generates, how its training went, and training new ones in the background."""

import streamlit as st

from genclf.app import figures, jobs, labels, summaries, views
from genclf.backbones import BACKBONES
from genclf.backbones.io import PRETRAINED, run_root
from ui import common

ss = st.session_state
c = common.ctx()
st.title("Models")
st.caption(
    f"A backbone is a model trained on the {labels.dataset(c.dataset)} images without their labels; its activations "
    "become the features. The images show what each one learned: samples a generator drew, an autoencoder's "
    "reconstructions, or the augmented views a contrastive encoder was trained on. Training runs in a background "
    "process that survives reloads; one at a time."
)
have, train = st.tabs([":material/inventory_2: Backbones", ":material/add_circle: Train a new one"])

with have, common.guard():
    folders = [
        (tag, d)
        for root, tag in ((PRETRAINED / c.dataset, "shipped"), (run_root(c.dataset), "run"))
        if root.is_dir()
        for d in sorted(root.iterdir())
        if (d / "config.json").is_file()
    ]
    if not folders:
        st.info(
            f"No backbone is trained for {labels.dataset(c.dataset)} yet; raw pixels need none. Train one in the next tab."
        )
    for tag, folder in folders:
        info = views.backbone_info(folder)
        status = info.get("status", "done")
        ready = (folder / "model.safetensors").is_file() and status != "training"
        kind = info.get("backbone", folder.name)
        head = f"**{labels.backbone(folder.name)}** ({tag}) · " + ("ready" if ready else "training, not finished yet")
        with st.expander(head, expanded=folder.name == c.label.split(" ")[0]):
            about = labels.BACKBONE_HELP.get(kind, "")
            st.caption(about[:1].upper() + about[1:] + ".", help=f"technical name: `{kind}`; folder `{folder}`")
            left, right = st.columns([1, 1])
            if (folder / "samples.png").is_file():
                own = getattr(BACKBONES.get(kind), "samples_caption", None)  # e.g. SimCLR: augmented views
                left.image(str(folder / "samples.png"), caption=labels.samples_caption(kind, own), width="stretch")
            else:
                left.caption("No samples yet (samples.png is written when training finishes).")
            if (folder / "neighbours.png").is_file():  # bench/simclr.py --neighbours
                left.image(str(folder / "neighbours.png"), caption=labels.NEIGHBOURS_CAPTION, width="stretch")
            log = summaries.train_log(folder)
            if len(log):
                right.plotly_chart(figures.loss_figure(log, "training loss"), key=f"loss_{tag}_{folder.name}")
                right.caption(
                    f"{int(log['step'].iloc[-1]):,} steps, {int(log['images'].iloc[-1]):,} images, "
                    f"{log['seconds'].iloc[-1] / 60:.1f} min"
                )
            with st.popover("config.json", icon=":material/data_object:"):
                st.json(info)


@st.fragment(run_every="2s")
def job_panel():
    with common.guard():
        job = jobs.status()
        if job is None:
            st.caption("No training job has run from the dashboard yet.")
            return
        what = f"{labels.backbone(job.backbone)} on {labels.dataset(job.dataset)} → `{job.out}`"
        if job.state == "running":
            losses = ", ".join(f"{k} {v:.4g}" for k, v in (job.losses or {}).items())
            st.progress(job.fraction, text=f"Training {what}: step {job.step:,}/{job.total:,} {losses}")
            if st.button("Cancel training", icon=":material/stop_circle:"):
                jobs.cancel()
                st.rerun(scope="app")
        elif job.state == "done":
            st.success(f"Finished {what}. It is in the backbone picker now.", icon=":material/check_circle:")
            if ss.get("job_seen") != job.id:
                ss.job_seen = job.id
                st.rerun(scope="app")  # refresh the sidebar's backbone list
        elif job.state == "cancelled":
            st.warning(f"Cancelled {what}. {job.message}")
        else:
            st.error(
                f"Training {what} failed: {job.message}. Check the settings (a smaller batch size for small "
                f"datasets) and start again; the full log is {job.log}."
            )


with train:
    job_panel()
    with st.form("train_form"):
        a, b, p = st.columns(3)
        ds = a.selectbox(
            "Dataset", views.dataset_choices(), index=None, placeholder=labels.dataset(c.dataset), format_func=labels.dataset
        )
        trainable = [n for n, k in BACKBONES.items() if k.trainable]
        bb = b.selectbox("Backbone", trainable, format_func=labels.backbone, help=labels.backbones_help(trainable))
        preset = p.selectbox(
            "Size", ["small", "tiny"], key="train_preset", help="`tiny` trains in seconds (for trying the UI out)."
        )
        a, b, p, s = st.columns(4)
        epochs = a.number_input("Epochs", 0.1, 100.0, 1.0, step=0.5)
        batch = b.number_input("Batch size", 8, 1024, 128, step=8)
        limit = p.number_input("Use at most N images (0 = all)", 0, 10**7, 0, step=1000)
        steps = s.number_input("Stop after N steps (0 = no cap)", 0, 10**7, 0, step=100)
        force = st.checkbox("Replace an existing finished model of this kind")
        go = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if go:
        with common.guard():
            job = jobs.start(
                ds or c.dataset,
                bb,
                preset=preset,
                epochs=float(epochs),
                batch_size=int(batch),
                limit=int(limit) or None,
                max_steps=int(steps) or None,
                seed=c.seed,
                force=force,
            )
            st.toast(
                f"Started {labels.backbone(job.backbone)} on {labels.dataset(job.dataset)}", icon=":material/rocket_launch:"
            )
            st.rerun()
