import csv
import os

import matplotlib.image
import pytest

from tests.scripts import run_tool

# One optimizer of each kind keeps the test short: lamb_tf's (applied once
# after the all-reduce, as LARS) and Keras' own (called back per replica, as
# Keras' Lamb); the tool builds all four the same way.
OPTIMIZERS = ["lamb_tf.LAMB", "keras AdamW"]


@pytest.mark.slow
def test_quick_study_writes_table_csv_and_plot_and_resumes(tmp_path, builtin_data_dir):
    args = (
        "--quick",
        "--optimizers=lamb,adamw",
        f"--output_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    run_tool("tools/batch_scaling_study.py", *args)

    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["optimizer"], int(r["batch_size"])) for r in rows) == sorted(
        (name, batch) for name in OPTIMIZERS for batch in (16, 64)
    )
    for row in rows:
        assert int(row["steps"]) == 512 // int(row["batch_size"])
        assert 0.0 <= float(row["mlm_accuracy"]) <= 1.0
        assert float(row["mlm_loss"]) > 0 and float(row["wall_seconds"]) > 0
    # The square-root rule from each optimizer's swept base rate.
    for name in OPTIMIZERS:
        small, large = (
            float(r["learning_rate"])
            for r in sorted(rows, key=lambda r: int(r["batch_size"]))
            if r["optimizer"] == name
        )
        assert large == pytest.approx(2 * small)

    table = (tmp_path / "results.md").read_text()
    assert "## Learning-rate sweep at batch 16" in table
    assert table.count("| yes |") == len(OPTIMIZERS)
    assert "| batch | " + " | ".join(OPTIMIZERS) + " |" in table
    assert "\n| 16 | " in table and "\n| 64 | " in table

    image = matplotlib.image.imread(tmp_path / "batch_scaling.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300

    # A second start finds every cell done and trains nothing.
    logs = sorted((tmp_path / "cells").glob("*/train.log"))
    before = [os.path.getmtime(p) for p in logs]
    output = run_tool("tools/batch_scaling_study.py", *args)
    assert [os.path.getmtime(p) for p in logs] == before
    assert "written: results.md, results.csv, batch_scaling.png" in output
