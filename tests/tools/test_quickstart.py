import re

from tests.scripts import run_tool


def test_quickstart_prints_a_falling_loss():
    stdout = run_tool("tools/quickstart.py", "--epochs", "3", "--examples", "8192", timeout=300)
    epochs = re.findall(r"^epoch\s+\d+\s+loss ([\d.]+)", stdout, re.M)
    assert len(epochs) == 3
    first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", stdout).groups())
    assert last < first and float(epochs[-1]) == last
    assert "trust ratio (kernels)" in stdout
