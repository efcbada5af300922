"""The GPU machine's benchmark script, run here on the CPU with tiny
settings and TensorFlow made unimportable, as on a machine with JAX alone."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import requires
from tests.scripts import ROOT

requires("optax", "test")  # a peer in the JAX optimizer benchmark


@pytest.mark.slow
def test_the_script_records_every_benchmark_without_tensorflow(tmp_path):
    hidden = tmp_path / "site"
    hidden.mkdir()
    # Imported at start-up: `import tensorflow` then fails as if absent.
    (hidden / "sitecustomize.py").write_text('import sys\nsys.modules["tensorflow"] = None\n')
    out = tmp_path / "out"
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PYTHONPATH=str(hidden),
        JAX_PLATFORMS="cpu",
        # LLVM's least optimised code: XLA compiles each step in about half
        # the time; this checks what is recorded, not how fast it runs.
        XLA_FLAGS="--xla_backend_optimization_level=0",
        MODELS="tiny",
        OPTIMIZER_MODELS="tiny",
        STEPS="1",
        WARMUP="1",
        MICRO_BATCH="2",
        ACCUMULATION="2",
        REPEATS="2",
    )
    proc = subprocess.run(
        ["bash", "tools/gpu_benchmarks.sh", "run", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((out / "step.json").read_text())["rows"]
    assert len(rows) == 3
    # Each workload at its own sequence length and masked-LM predictions.
    shapes = {r["workload"]: (r["seq_length"], r["max_predictions"]) for r in rows}
    assert shapes == {"phase1": (128, 20), "phase2": (512, 80), "squad": (384, 0)}
    for row in rows:
        assert row["model"] == "tiny" and row["finite"] and row["sequences_per_second"] > 0
        assert row["global_batch"] == 4 and 0 < row["mfu"] < 1
        assert row["vs_a100_reference"] is None  # NVIDIA's figure is BERT-large's
    log = (out / "benchmarks.log").read_text()
    assert all(f"| {name} | BERT-tiny |" in log for name in shapes)
    (result,) = json.loads((out / "optimizer.json").read_text())["results"]
    names = {r["optimizer"] for r in result["rows"]}
    assert names == {
        "lamb_tf.LAMB",
        "lamb_tf.LARS",
        "keras.Lamb",
        "keras.AdamW",
        "optax.lamb",
        "optax.adamw",
    }
    assert all(r["xla"] and r["peak_extra_model_sizes"] is not None for r in result["rows"])
