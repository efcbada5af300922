"""The batch-size study end to end at its quick size: both protocols, the
tuned trials, the noise scale, the tables and plot, a resumed start, and the
refusals."""

import csv
import os

import matplotlib.image
import pytest

from tests.scripts import assert_one_line, run_process, run_tool, without
from trainers import stack

STUDY = "tools/batch_scaling_study.py"
# One optimizer keeps the test short: the tool builds all five the same way,
# and the trainer's tests train with lamb_tf's (applied once after the
# all-reduce) and Keras' own (called back per replica, fine-tuning's AdamW).
OPTIMIZERS = ["lamb_tf.LAMB"]
# Half the quick size's cap: 40 updates at batch 16, 10 at 64.
MAX_SEQUENCES = 640


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_quick_study_runs_both_protocols_and_resumes(tmp_path, builtin_data_dir):
    args = (
        "--quick",
        "--optimizers=lamb",
        "--trials=2",
        f"--max_sequences={MAX_SEQUENCES}",
        f"--output_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    run_tool(STUDY, *args)

    trials = _rows(tmp_path / "trials.csv")
    tuned = [t for t in trials if t["protocol"] == "tuned"]
    # Two trials per cell, at the same quasi-random points relative to each
    # optimizer's sqrt-scaled centre.
    assert len(tuned) == 2 * 2 * len(OPTIMIZERS)
    for label in OPTIMIZERS:
        small = [t for t in tuned if t["optimizer"] == label and t["batch_size"] == "16"]
        large = [t for t in tuned if t["optimizer"] == label and t["batch_size"] == "64"]
        for a, b in zip(small, large):
            assert float(b["learning_rate"]) == pytest.approx(2 * float(a["learning_rate"]))
            assert b["warmup_fraction"] == a["warmup_fraction"]
    for trial in trials:
        assert int(trial["max_steps"]) == MAX_SEQUENCES // int(trial["batch_size"])
        if trial["reached"] == "True":
            assert 0 < int(trial["steps_to_target"]) <= int(trial["max_steps"])
            assert float(trial["mlm_accuracy"]) >= 0.03
        # Measured where an update has several micro-batches of 16.
        measured = trial["noise_scale"] != ""
        assert measured == (trial["batch_size"] == "64"), trial
        if measured:
            assert float(trial["noise_scale"]) > 0

    results = _rows(tmp_path / "results.csv")
    assert sorted((r["protocol"], r["optimizer"], r["batch_size"]) for r in results) == sorted(
        (p, o, b) for p in ("paper", "tuned") for o in OPTIMIZERS for b in ("16", "64")
    )
    for label in OPTIMIZERS:
        cells = {(r["protocol"], r["batch_size"]): r for r in results if r["optimizer"] == label}
        base, paper = cells[("paper", "16")], cells[("paper", "64")]
        # B_0's best tuned trial is the paper's base ...
        assert base["learning_rate"] == cells[("tuned", "16")]["learning_rate"]
        # ... scaled by sqrt(B / B_0) in rate and B / B_0 in warmup (capped).
        assert float(paper["learning_rate"]) == pytest.approx(2 * float(base["learning_rate"]))
        growth = min(0.3, 4 * float(base["warmup_fraction"]))
        assert float(paper["warmup_fraction"]) == pytest.approx(growth)
        # The tuned cell is the fastest of its trials.
        trial_steps = [
            int(t["steps_to_target"])
            for t in tuned
            if t["optimizer"] == label and t["batch_size"] == "64" and t["reached"] == "True"
        ]
        if trial_steps:
            assert int(cells[("tuned", "64")]["steps_to_target"]) == min(trial_steps)
    repeat = [t for t in trials if t["protocol"] == "repeat"]
    assert [(t["optimizer"], t["batch_size"], t["seed"]) for t in repeat] == [
        ("lamb_tf.LAMB", "16", "1")
    ]

    table = (tmp_path / "results.md").read_text()
    assert "tuned per batch" in table and "the paper's protocol" in table
    assert "| batch | perfect scaling | " + " | ".join(OPTIMIZERS) + " |" in table
    assert "## Where each optimizer leaves perfect scaling" in table
    assert "## The same setting with another seed" in table
    image = matplotlib.image.imread(tmp_path / "batch_scaling.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 400

    # A second start finds every run done and trains nothing.
    logs = sorted((tmp_path / "cells").glob("*/*/train.log"))
    assert len(logs) == len(trials)
    before = [os.path.getmtime(p) for p in logs]
    output = run_tool(STUDY, *args)
    assert [os.path.getmtime(p) for p in logs] == before
    assert "written: results.md, results.csv, trials.csv, batch_scaling.png" in output


@pytest.mark.slow
def test_an_unreachable_target_stops_the_study_with_that_finding(tmp_path, builtin_data_dir):
    error = run_process(
        STUDY,
        "--quick",
        "--optimizers=lamb",
        "--target=0.99",
        "--max_sequences=160",
        f"--output_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
        expect_status=1,
    )
    assert "target 0.99 not reached at batch 16 within 160 sequences" in error
    assert "lamb_tf.LAMB" in error and "unreachable" in error
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--batch_sizes=16,40", "--batch_sizes: 40 is not a multiple of the micro-batch 16"),
        ("--trials=0", "--trials=0: each cell needs at least one run"),
        ("--optimizers=lamb,adam", "--optimizers: unknown ['adam']"),
        ("--repeat=lamb", "--repeat: 'lamb' is not optimizer@batch"),
    ],
)
def test_bad_settings_stop_before_any_compute(tmp_path, flag, message):
    error = run_process(STUDY, "--quick", flag, f"--output_dir={tmp_path}", expect_status=2)
    assert message in error
    assert not (tmp_path / "cells").exists() and not (tmp_path / "data").exists()


def test_without_matplotlib_the_study_stops_before_it_starts(tmp_path):
    # The plot is written last, after the runs: its package is checked first.
    out = tmp_path / "study"
    env = without(tmp_path / "site", "matplotlib")
    stderr = run_process(STUDY, "--quick", f"--output_dir={out}", expect_status=2, env=env)
    assert_one_line(stderr, "(its batch_scaling.png) needs matplotlib, which is not installed")
    assert stderr.rstrip().endswith(stack.install_command(["plots"])) and not out.exists()
