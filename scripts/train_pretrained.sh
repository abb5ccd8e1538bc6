#!/usr/bin/env bash
# Trains the shipped Fashion-MNIST weights with our own `genclf train` (resumable: rerun to continue).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # robust when the 2 cores are shared
G=".venv/bin/python -m genclf"
P=genclf/pretrained/fashion-mnist
$G train --dataset fashion-mnist --backbone vae   --epochs 12 --out $P/vae
$G train --dataset fashion-mnist --backbone vqvae --epochs 12 --out $P/vqvae
$G train --dataset fashion-mnist --backbone gan   --epochs 10 --out $P/gan
$G train --dataset fashion-mnist --backbone ddpm  --epochs 6  --out $P/ddpm
