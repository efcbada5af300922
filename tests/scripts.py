"""Runs a script of the repository in a fresh interpreter, as a user would."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_tool(script, *args, timeout=600):
    """Returns the script's standard output; fails the test, with the end of
    its standard error, if it exits non-zero."""
    return run_process(script, *args, timeout=timeout)


def run_process(*args, timeout=600, expect_failure=False):
    """`python *args`: its standard output, or with `expect_failure` its
    standard error (the test fails if the exit status is not as expected)."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if expect_failure:
        assert proc.returncode != 0, proc.stdout[-3000:]
        return proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
