"""Runs a script of the repository in a fresh interpreter, as a user would."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_tool(script, *args, timeout=600):
    """Returns the script's standard output; fails the test, with the end of
    its standard error, if it exits non-zero."""
    proc = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
