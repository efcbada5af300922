"""Runs a script of the repository in a fresh interpreter, as a user would."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_tool(script, *args, timeout=600, with_stderr=False):
    """Returns the script's standard output; fails the test, with the end of
    its standard error, if it exits non-zero."""
    return run_process(script, *args, timeout=timeout, with_stderr=with_stderr)


def run_process(*args, timeout=600, expect_status=0, env=None, with_stderr=False, **popen):
    """`python *args`: its standard output, or when `expect_status` is not 0
    its standard error (the test fails if the exit status differs); with
    `with_stderr`, (standard output, standard error)."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow", **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )
    assert proc.returncode == expect_status, (proc.returncode, proc.stderr[-3000:])
    if with_stderr:
        return proc.stdout, proc.stderr
    return proc.stderr if expect_status else proc.stdout
