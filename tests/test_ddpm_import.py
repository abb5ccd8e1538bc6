"""diffusers is imported when a DDPM is built, not with genclf, and safely from several threads at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys, threading
import genclf.app.views
assert "diffusers" not in sys.modules, "importing genclf pulled in diffusers"
from genclf.backbones.ddpm import DDPM
errors = []
def build():
    try:
        DDPM.from_preset("tiny", (1, 8, 8))
    except Exception as e:  # what the dashboard met: ImportError from diffusers' lazy module
        errors.append(repr(e))
threads = [threading.Thread(target=build) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not errors, errors
print("ok")
"""


def test_diffusers_is_imported_on_first_build_and_from_threads_at_once():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
