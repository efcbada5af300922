import re

import pytest

from tests.scripts import run_tool


@pytest.mark.slow
def test_tiny_dumps_on_one_and_two_processes():
    stdout = run_tool("tools/benchmark_prepare.py", "--files=2", "--mb=0.05", timeout=300)
    rows = re.findall(r"^\| (\d) \| [\d.]+ \| ([\d.]+) \| ([\d,]+) \| ([\d,]+) \|$", stdout, re.M)
    assert [r[0] for r in rows] == ["1", "2"]
    assert rows[0][2:] == rows[1][2:] and int(rows[0][2].replace(",", "")) > 0  # same output
    assert "speed-up, 2 processes against 1" in stdout
