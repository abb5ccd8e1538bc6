#!/usr/bin/env bash
# Trains the shipped Fashion-MNIST weights with our own `genclf train`. Resumable: rerun to continue.
# One thread per run: on a shared 2-core machine, oversubscribed OpenMP threads stall badly.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
G=".venv/bin/python -m genclf"
P=genclf/pretrained/fashion-mnist
case "${1:-all}" in
  # ddpm: how the shipped run got to 27 epochs (9, then a warm start, then bit-exact legs) is in its command.txt
  ddpm) $G train --dataset fashion-mnist --backbone ddpm --epochs 27 --out $P/ddpm ;;
  rest)
    $G train --dataset fashion-mnist --backbone vae   --epochs 12 --out $P/vae
    $G train --dataset fashion-mnist --backbone vqvae --epochs 6  --out $P/vqvae
    $G train --dataset fashion-mnist --backbone gan   --epochs 4  --out $P/gan
    $G train --dataset fashion-mnist --backbone simclr --epochs 95 --batch-size 256 --out $P/simclr ;;
  all) "$0" rest; "$0" ddpm ;;
esac
