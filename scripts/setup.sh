#!/usr/bin/env bash
# Idempotent setup: apt packages (when missing), the .venv, pinned pip packages, genclf itself.
# Usage: scripts/setup.sh [app|test]   ("test" also installs chromium for the browser test)
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-app}"

apt_pkgs=()
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || apt_pkgs+=(dataset-fashion-mnist)
if [[ "$want" == test ]] && [[ ! -x /usr/bin/chromium ]]; then apt_pkgs+=(chromium); fi
if ((${#apt_pkgs[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: apt-get install -y ${apt_pkgs[*]}"
    apt-get install -y "${apt_pkgs[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y "${apt_pkgs[@]}"; }
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get install -y "${apt_pkgs[@]}" >/dev/null 2>&1 || { sudo apt-get update -qq && sudo apt-get install -y "${apt_pkgs[@]}"; }
  else
    echo "setup: missing Debian packages; run:  sudo apt-get install -y ${apt_pkgs[*]}" >&2
    exit 2
  fi
fi

py=$(command -v python3.11 || command -v python3)
stamp=.venv/.genclf-installed
sum=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [[ -f $stamp && "$(cat $stamp)" == "$sum" ]]; then
  exit 0
fi
# The .venv takes about 7 GB (torch's wheel is a 5.5 GB build); pip also unpacks into $TMPDIR.
# A full disk otherwise shows up only as pip's "[Errno 28] No space left on device".
free_gb() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {printf "%d", $4 / 1048576}'; }
need_gb=8
tmp=${TMPDIR:-/tmp}
for dir in . "$tmp"; do
  got=$(free_gb "$dir")
  if [[ -n "$got" ]] && ((got < need_gb)); then
    echo "setup: warning: only ${got} GB free under $(cd "$dir" && pwd); the .venv needs about ${need_gb} GB" >&2
  fi
done
pip_install() {
  .venv/bin/python -m pip install -q "$@" || {
    echo "setup: pip install $* failed; free disk: $(free_gb .) GB here, $(free_gb "$tmp") GB in $tmp (about ${need_gb} GB needed). Fix the cause above and rerun." >&2
    exit 2
  }
}
[[ -x .venv/bin/python ]] || "$py" -m venv .venv
pip_install --upgrade pip setuptools
pip_install -r requirements-dev.txt
pip_install --no-deps --no-build-isolation -e .
echo "$sum" > $stamp
echo "setup: .venv ready"
