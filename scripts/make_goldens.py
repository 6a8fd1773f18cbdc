#!/usr/bin/python3
"""Regenerates every golden-tensor fixture in tests/data/golden with Debian's python3-torch.

Usage: /usr/bin/python3 scripts/make_goldens.py   (python3-torch installs for /usr/bin/python3)
Each scripts/goldens/<area>.py writes its own files; this runs them all.
"""
import os
import runpy
import sys

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens")
sys.path.insert(0, here)
for f in sorted(os.listdir(here)):
    if f.endswith(".py") and f != "common.py":
        print(f"== {f}")
        runpy.run_path(os.path.join(here, f), run_name="__main__")
