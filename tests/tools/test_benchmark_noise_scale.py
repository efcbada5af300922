"""The noise-scale cost benchmark runs both settings and reports their ratio
(a tiny model, a few steps)."""

import json

import pytest

from tests.scripts import run_process, run_tool


@pytest.mark.slow
def test_tiny_run_reports_on_and_off_and_their_ratio(tmp_path, builtin_data_dir):
    output = tmp_path / "figures.json"
    stdout = run_tool(
        "tools/benchmark_noise_scale.py",
        "--model=tiny",
        "--seq_length=32",
        "--max_predictions=5",
        "--batch_size=8",
        "--micro_batch=4",
        "--steps=4",
        "--rounds=1",
        f"--data_dir={builtin_data_dir}",
        f"--output_json={output}",
    )
    figures = json.loads(output.read_text())
    (round_,) = figures["rounds"]
    assert round_["on"] > 0 and round_["off"] > 0
    assert figures["ratio"] == pytest.approx(round_["on"] / round_["off"])
    assert figures["pieces"] == 2
    assert "batch 8 in 2 micro-batches of 4" in stdout


def test_without_accumulation_there_is_nothing_to_measure(tmp_path):
    error = run_process(
        "tools/benchmark_noise_scale.py", "--batch_size=16", "--micro_batch=16", expect_status=2
    )
    assert "--batch_size=16 must be a multiple (at least 2x) of --micro_batch=16" in error
