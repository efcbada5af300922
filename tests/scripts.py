"""Runs a script of the repository in a fresh interpreter, as a user would."""

import io
import json
import os
import pathlib
import signal
import socket
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
        env={**os.environ, "KERAS_BACKEND": "tensorflow", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )
    assert proc.returncode == expect_status, (proc.returncode, proc.stderr[-3000:])
    if with_stderr:
        return proc.stdout, proc.stderr
    return proc.stderr if expect_status else proc.stdout


def without(folder, *modules):
    """Environment for `run_process` in which `modules` cannot be imported,
    as where they are not installed: a sitecustomize.py in `folder`, put
    first on PYTHONPATH, sets them to None in sys.modules (`import` then
    raises ModuleNotFoundError and importlib.util.find_spec finds nothing)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


def assert_one_line(stderr, *parts):
    """`stderr` is one error line, without a traceback, holding each of `parts`."""
    assert stderr.count("\n") == 1 and ": error: " in stderr, stderr
    assert "Traceback" not in stderr, stderr
    for part in parts:
        assert part in stderr, (part, stderr)


def free_ports(n):
    """`n` TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def logged_step(model_dir):
    """The newest step in a trainer's log.jsonl (0 before it has one); a
    line still being written is passed over."""
    try:
        with open(os.path.join(model_dir, "log.jsonl")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    steps = []
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass
    return max(steps, default=0)


class SignalOnFirstProgress(io.StringIO):
    """stdout that sends this process a signal when the first progress line
    is printed, as a preemption notice (or a Ctrl-C) would arrive
    mid-training."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__()
        self.signum = signum

    def write(self, text):
        if "phase 1 [" in text and "sent" not in self.__dict__:
            self.sent = True
            os.kill(os.getpid(), self.signum)
        return super().write(text)
