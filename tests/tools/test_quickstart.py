import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quickstart_prints_a_falling_loss():
    proc = subprocess.run(
        [sys.executable, "tools/quickstart.py", "--epochs", "3", "--examples", "8192"],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    epochs = re.findall(r"^epoch\s+\d+\s+loss ([\d.]+)", proc.stdout, re.M)
    assert len(epochs) == 3
    first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", proc.stdout).groups())
    assert last < first and float(epochs[-1]) == last
    assert "trust ratio (kernels)" in proc.stdout
