"""The JAX step benchmark's workloads and synthetic batches, and its
message where JAX is missing (its run is tested with tools/gpu_benchmarks.sh,
tests/tools/test_gpu_benchmarks.py)."""

import numpy as np
import pytest

from tests.conftest import requires
from tests.scripts import assert_one_line, run_process, without
from trainers import stack


@pytest.fixture(scope="module")
def bench():
    requires("jax", "jax")
    from tools import benchmark_jax_step

    return benchmark_jax_step


def test_phase2_batch_has_80_distinct_predictions_at_sequence_512(bench):
    workload = bench.WORKLOADS["phase2"]
    assert (workload.models, workload.seq_length, workload.max_predictions) == (
        ("large",),
        512,
        80,
    )
    batch = bench.synthetic_batch(np.random.default_rng(0), 3, workload, 30522)
    assert batch["token_ids"].shape == batch["padding_mask"].shape == (3, 512)
    positions = batch["masked_lm_positions"]
    assert positions.shape == batch["masked_lm_ids"].shape == (3, 80)
    # Distinct, after [CLS], inside the sequence.
    assert (np.diff(positions, axis=1) > 0).all() and positions.min() >= 1
    assert positions.max() < 512


def test_squad_batch_has_answers_inside_the_context(bench):
    workload = bench.WORKLOADS["squad"]
    assert (workload.models, workload.seq_length, workload.max_predictions) == (("base",), 384, 0)
    size = 256
    batch = bench.synthetic_batch(np.random.default_rng(0), size, workload, 30522)
    for name in (*workload.task.inputs, *workload.task.labels):
        assert batch[name].shape[0] == size and batch[name].dtype == np.int32, name
    start, end = batch["start_positions"], batch["end_positions"]
    rows = np.arange(size)
    # In the context (segment 1), before the final [SEP], at most 30 tokens.
    assert (batch["segment_ids"][rows, start] == 1).all()
    assert (start <= end).all() and (end <= 384 - 2).all() and (end - start < 30).all()
    assert len(np.unique(start)) > size // 4  # spread over the context


def test_fine_tuning_uses_adamw_without_decay_on_biases_and_layer_norms(bench):
    import keras

    from trainers.bert.finetune import heads

    workload = bench.WORKLOADS["squad"]
    assert isinstance(workload.task, heads.Span)
    optimizer = workload.optimizer()
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.epsilon == 1e-6
    optimizer.learning_rate = 1.0
    variables = [keras.Variable(np.ones(2), name=n) for n in ("kernel", "bias", "gamma", "beta")]
    # Zero gradients: only the decoupled weight decay moves a variable.
    optimizer.apply([np.zeros(2)] * 4, variables)
    kernel, *kept = (v.numpy() for v in variables)
    np.testing.assert_allclose(kernel, 1 - 0.01)
    assert all((v == 1).all() for v in kept)


def test_only_bert_large_phase1_is_compared_with_nvidias_figure(bench):
    assert bench.a100_reference("phase1", "large") == 475.0
    assert bench.a100_reference("phase1", "base") is None
    assert bench.a100_reference("phase2", "large") is None


def test_without_jax_one_line_names_the_install(tmp_path):
    stderr = run_process(
        "tools/benchmark_jax_step.py",
        "--models=tiny",
        f"--json_out={tmp_path / 'step.json'}",
        expect_status=2,
        env={"KERAS_BACKEND": "jax", **without(tmp_path / "site", "jax")},
    )
    fix = stack.install_command(["jax"])
    assert_one_line(stderr, f"tools/benchmark_jax_step.py needs JAX, which is not installed: {fix}")
    assert not (tmp_path / "step.json").exists()
