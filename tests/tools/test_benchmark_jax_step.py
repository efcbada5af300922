"""The JAX step benchmark where JAX is missing (its run is tested with
tools/gpu_benchmarks.sh, tests/tools/test_gpu_benchmarks.py)."""

from tests.scripts import assert_one_line, run_process, without
from trainers import stack


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
