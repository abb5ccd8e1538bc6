"""Plain names for what the dashboard shows; the technical name goes into the help text (never imports streamlit).

    labels.block("up_blocks.0")        # 'first decoder block'
    labels.block_help("up_blocks.0")   # 'technical name: `up_blocks.0` (the UNet block that ...)'
    labels.pipeline("ddpm fusion + logreg")   # 'DDPM, fused timesteps + logistic regression'
    labels.dataset("folder:data/uploads/shoes")   # 'shoes (upload)'

One table per kind of name, so that every page says the same thing. Unknown names come back unchanged.
"""

from __future__ import annotations

import re

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")

BACKBONES = {
    "ddpm": "DDPM",
    "vae": "VAE",
    "vqvae": "VQ-VAE",
    "gan": "GAN",
    "pixels": "raw pixels",
    "simclr": "SimCLR",
    "cnn": "CNN from scratch",
}
BACKBONE_HELP = {
    "ddpm": "a denoising diffusion model (a UNet that learned to remove noise from the unlabeled images)",
    "vae": "a variational autoencoder trained on the unlabeled images",
    "vqvae": "a VQ-VAE: an autoencoder with a learned codebook of image parts",
    "gan": "a GAN; the features come from its discriminator",
    "pixels": "no model: the raw pixel values (the baseline every backbone must beat)",
    "simclr": "a contrastive self-supervised encoder (SimCLR: two augmented views of an image should agree)",
    "cnn": "a small convolutional network trained from scratch on the labeled images only",
}
HEADS = {
    "logreg": "logistic regression",
    "linear": "linear layer",
    "mlp": "small MLP",
    "knn": "nearest neighbour",
    "labelprop": "label propagation",
    "cnn": "CNN",
}
HEAD_HELP = {
    "logreg": "`logreg`: logistic regression on standardized features",
    "linear": "`linear`: one linear layer trained with Adam",
    "mlp": "`mlp`: a two-layer network with 128 hidden units",
    "knn": "`knn`: the label of the most similar labeled image (cosine similarity)",
    "labelprop": "`labelprop`: labels spread over a graph of the labeled and 5,000 unlabeled images",
}
DATASETS = {
    "fashion-mnist": "Fashion-MNIST",
    "mnist": "MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "digits": "digits (8×8)",
}
STRATEGIES = {"random": "random", "representative": "representative (chosen by clustering, no labels)"}
# words the pages use, with the technical term kept for the help
TERMS = {
    "fingerprint": ("data ID", "a hash of the image files' bytes (the `fingerprint`): the same images give the same ID"),
    "procrustes": (
        "aligned across timesteps",
        "each layout is rotated, reflected and scaled onto the previous timestep's (Procrustes alignment), so "
        "clusters do not jump when t changes",
    ),
    "t": ("noise level t", "the diffusion timestep t, 0 = clean image, 999 = pure noise"),
    "shots": ("labeled images per class", "k, the number of labeled examples per class (shots)"),
}

_BLOCK_RULES = (  # (pattern, plain name; {n} = the ordinal of a 0-based index, {m} of a 1-based one), technical help
    (r"down_blocks\.(\d+)", "{n} encoder block", "a UNet encoder (down-sampling) block"),
    (r"mid_block", "bottleneck", "the UNet's middle block, at the coarsest resolution"),
    (r"up_blocks\.(\d+)", "{n} decoder block", "a UNet decoder (up-sampling) block"),
    (r"enc\.(\d+)", "{n} encoder layer", "a convolutional layer of the encoder"),
    (r"dec\.(\d+)", "{n} decoder layer", "a convolutional layer of the decoder"),
    (r"mu", "latent code (mean)", "the mean of the VAE's latent distribution"),
    (r"z_e", "latent before the codebook", "the encoder output before quantization"),
    (r"z_q", "latent after the codebook", "the quantized latent"),
    (r"d\.(\d+)", "{n} discriminator layer", "a convolutional layer of the GAN's discriminator"),
    (r"g\.(\d+)", "{n} generator layer", "a layer of the GAN's generator"),
    (r"stem", "input layer", "the encoder's first convolution (its stem), before the residual stages"),
    (r"layer(\d+)", "{m} encoder stage", "a residual stage of the SimCLR encoder (ResNet-style `layerN`)"),
    (r"pixels", "raw pixels", "the image itself, flattened"),
)
NEIGHBOURS_CAPTION = (
    "nearest neighbours: each row is a test image (left, two per class) and the 8 training images closest to it in "
    "SimCLR's feature space; a row that stays in one class is a class the features keep together"
)
# what a backbone's samples.png shows, for backbones that do not say it themselves (their `samples_caption`)
SAMPLES = {
    "ddpm": "images the DDPM generated from pure noise",
    "gan": "images the GAN's generator drew from random codes",
    "vae": "top: test images, bottom: the VAE's reconstructions of them",
    "vqvae": "top: test images, bottom: the VQ-VAE's reconstructions of them",
}


def _ordinal(i: int) -> str:
    return ORDINALS[i] if 0 <= i < len(ORDINALS) else f"#{i + 1}"


def _match(name: str):
    base, _, grid = name.partition("@")
    for pattern, plain, help_ in _BLOCK_RULES:
        m = re.fullmatch(pattern, base)
        if m:
            i = int(m.group(1)) if m.groups() else 0
            text = plain.format(n=_ordinal(i), m=_ordinal(i - 1))
            return text, help_, grid
    return None


def block(name: str) -> str:
    """'mid_block' -> 'bottleneck', 'up_blocks.0@7' -> 'first decoder block, 7×7 grid'; unknown names unchanged."""
    m = _match(name)
    if m is None:
        return name
    text, _, grid = m
    return f"{text}, {grid}×{grid} grid" if grid else text


def block_help(name: str) -> str:
    m = _match(name)
    if m is None:
        return f"technical name: `{name}`"
    _, help_, grid = m
    pool = f", average-pooled on a {grid}×{grid} grid" if grid else ""
    return f"technical name: `{name}` ({help_}{pool})"


def blocks_help(names) -> str:
    """The technical name behind each plain block name, for a picker's help: 'bottleneck = `mid_block`; ...'."""
    return "; ".join(f"{block(n)} = `{n}`" for n in names)


def blocks(names) -> str:
    """A block list as plain words joined by ' + '; '' for None/empty."""
    if not names:
        return ""
    if isinstance(names, str):
        names = names.split("+")
    return " + ".join(block(n) for n in names)


def backbone(name: str) -> str:
    """'ddpm' -> 'DDPM'; a run's picker label ('vae (run)') and folder paths keep their suffix / use the folder name."""
    name = str(name).rstrip("/")
    base = name.split("/")[-1]
    head, sep, rest = base.partition(" ")
    return BACKBONES.get(head, head) + (sep + rest if sep else "")


def backbones_help(names) -> str:
    """One help line per backbone: its plain name and the technical one."""
    return "; ".join(f"{backbone(n)} = `{n}`" for n in names)


def backbone_help(name: str) -> str:
    base = str(name).rstrip("/").split("/")[-1].split(" ")[0]
    return f"{BACKBONE_HELP[base]} (technical name: `{base}`)" if base in BACKBONE_HELP else f"technical name: `{name}`"


def head(name: str) -> str:
    return HEADS.get(name, name)


def heads_help(names) -> str:
    """One help line per head: its plain name and the technical one."""
    return "; ".join(f"{head(h)} = {HEAD_HELP.get(h, f'`{h}`')}" for h in names)


def dataset(name: str) -> str:
    """'fashion-mnist' -> 'Fashion-MNIST'; 'folder:data/uploads/shoes' -> 'shoes (upload)'; another folder ->
    'shoes (folder)'."""
    name = str(name)
    if name.startswith("folder:"):
        path = name.removeprefix("folder:").rstrip("/")
        kind = "upload" if "/uploads/" in f"/{path}" else "folder"
        return f"{path.split('/')[-1]} ({kind})"
    return DATASETS.get(name, name)


def dataset_help(name: str) -> str:
    name = str(name)
    return f"technical name: `{name}`" if name.startswith("folder:") or name in DATASETS else ""


def samples_caption(name: str, own: str | None = None) -> str:
    """What a backbone's samples.png shows: the backbone's own `samples_caption` when it has one."""
    return own or SAMPLES.get(str(name), "samples")


def step(text: str) -> str:
    """A background task's step in plain words: 'ddpm t=10 · features of 2,000 test images' -> 'DDPM t=10 · ...'."""
    head, sep, rest = str(text).partition(" ")
    base = head.rstrip(":")
    return BACKBONES[base] + head[len(base) :] + sep + rest if base in BACKBONES else str(text)


def strategy(name: str) -> str:
    return STRATEGIES.get(name, name)


def term(key: str) -> str:
    return TERMS[key][0]


def term_help(key: str) -> str:
    return TERMS[key][1]


def pipeline(label: str) -> str:
    """A report pipeline label in plain words: 'ddpm fusion + logreg' -> 'DDPM, fused timesteps + logistic
    regression'; 'pixels + logreg (baseline)' -> 'raw pixels + logistic regression (baseline)'."""
    label = str(label)
    suffix = ""
    m = re.fullmatch(r"(.*?)( \(.*\))", label)
    if m:
        label, suffix = m.group(1), m.group(2)
    if label == "cnn from scratch" or label == "cnn + cnn":
        return BACKBONES["cnn"] + suffix
    if " + " not in label:
        return backbone(label) + suffix
    feats, h = label.rsplit(" + ", 1)
    words = feats.split(" ")
    name = backbone(words[0])
    rest = " ".join(words[1:])
    if rest == "fusion":
        name += ", fused timesteps"
    elif rest.startswith("t="):
        name += f", {rest}"
    elif rest:
        name += f" {rest}"
    return f"{name} + {head(h)}{suffix}"
