import re

import pytest

from tests.scripts import assert_one_line, run_process, run_tool, without
from trainers import stack


@pytest.mark.slow
def test_tiny_dumps_on_one_and_two_processes():
    stdout = run_tool("tools/benchmark_prepare.py", "--files=2", "--mb=0.05", timeout=300)
    rows = re.findall(r"^\| (\d) \| [\d.]+ \| ([\d.]+) \| ([\d,]+) \| ([\d,]+) \|$", stdout, re.M)
    assert [r[0] for r in rows] == ["1", "2"]
    assert rows[0][2:] == rows[1][2:] and int(rows[0][2].replace(",", "")) > 0  # same output
    assert "speed-up, 2 processes against 1" in stdout


def test_without_the_corpus_extra_it_stops_before_writing_dumps(tmp_path):
    stdout, stderr = run_process(
        "tools/benchmark_prepare.py",
        expect_status=2,
        env=without(tmp_path, "mwparserfromhell"),
        with_stderr=True,
    )
    assert_one_line(stderr, "tools/benchmark_prepare.py needs mwparserfromhell, which is not ")
    assert stack.install_command(["corpus"]) in stderr and "dump file" not in stdout
