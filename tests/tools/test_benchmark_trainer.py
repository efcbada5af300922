"""The trainer benchmark runs our trainer on both engines, in alternating
turns, and the peer on the same model and data and reports figures that
hang together (a tiny model, a few steps)."""

import json

import pytest

from tests.scripts import assert_one_line, run_process, run_tool, without
from trainers import stack


@pytest.mark.slow
def test_tiny_run_reports_both_engines_and_the_peer(tmp_path, builtin_data_dir):
    output = tmp_path / "figures.json"
    stdout = run_tool(
        "tools/benchmark_trainer.py",
        "--model=tiny",
        "--seq_length=32",
        "--max_predictions=5",
        "--batch_size=8",
        "--steps=4",
        "--precisions=float32",
        "--rounds=1",
        f"--data_dir={builtin_data_dir}",
        f"--output_json={output}",
    )
    assert "BERT-tiny (2 layers x 128, vocabulary 4096), sequence 32, batch 8" in stdout
    (row,) = json.loads(output.read_text())["rows"]
    assert row["precision"] == "float32"
    assert row["ours_tokens_per_second"] > 0 and row["peer_tokens_per_second"] > 0
    ratio = row["ours_tokens_per_second"] / row["peer_tokens_per_second"]
    assert row["ratio"] == pytest.approx(ratio)
    assert 0 < row["ours_mfu"] < 1 and 0 < row["peer_mfu"] < 1
    assert 0 < row["optimizer_share"] < 1
    # The JAX engine, measured in a child process on Keras' JAX backend.
    assert row["jax_tokens_per_second"] > 0 and 0 < row["jax_mfu"] < 1
    assert row["jax_ratio"] == pytest.approx(
        row["jax_tokens_per_second"] / row["peer_tokens_per_second"]
    )
    assert f"| float32 | {row['peak_gflops']:.0f} |" in stdout
    # One round (the default two alternate the order; a second round is a
    # minute of CI here): its figures are the row's.
    (measured,) = row["rounds"]
    assert measured["order"] == ["tf", "jax"] and measured["jax"] == row["jax_tokens_per_second"]
    assert row["jax_over_tf"] == pytest.approx(measured["jax"] / measured["tf"])
    assert f"| {row['jax_over_tf']:.2f}x |" in stdout


def test_without_jax_the_default_engines_stop_before_any_work(tmp_path):
    stderr = run_process(
        "tools/benchmark_trainer.py",
        f"--data_dir={tmp_path / 'data'}",
        expect_status=2,
        env=without(tmp_path / "site", "jax"),
    )
    fix = stack.install_command(["cpu", "jax"])
    assert_one_line(stderr, f"--engines=tf,jax needs JAX, which is not installed: {fix}")
    assert stderr.rstrip().endswith("; or --engines=tf") and not (tmp_path / "data").exists()
