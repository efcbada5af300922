import pytest

from tests.scripts import run_tool

pytest.importorskip("jax", reason="the JAX engine needs the [jax] extra")
pytest.importorskip("orbax.checkpoint", reason="the JAX engine needs the [jax] extra")


@pytest.mark.slow
def test_the_jax_engine_resumes_after_sigkill_and_sigterm_with_the_uninterrupted_weights(
    tmp_path, builtin_data_dir
):
    output = run_tool(
        "tools/fault_drill.py",
        "--engine=jax",
        "--faults=2",
        "--kinds=kill,term",
        "--seed=1",
        f"--work_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    # Seed 1: SIGKILL in phase 1; the resumed start crosses into phase 2 and
    # is stopped there by SIGTERM; the last start resumes in phase 2.
    faults = [line for line in output.splitlines() if line.startswith("fault ")]
    assert len(faults) == 2, output
    assert {f.split(" ")[2] for f in faults} == {"SIGKILL", "SIGTERM"}, output
    assert "largest difference in weights and optimizer state: 0\n" in output
    assert output.rstrip().endswith(
        "faults injected: 2, survived: 2, steps lost beyond the last checkpoint: 0, "
        "final weights identical: yes"
    )
