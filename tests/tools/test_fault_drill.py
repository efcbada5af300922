import pytest

from tests.scripts import run_tool


@pytest.mark.slow
def test_two_faults_are_survived_with_the_uninterrupted_weights(tmp_path, builtin_data_dir):
    output = run_tool(
        "tools/fault_drill.py",
        "--faults=2",
        "--seed=36",
        f"--work_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    # Seed 36 draws SIGTERM after step 11 (phase 1) and SIGKILL after step 31
    # (phase 2, after a restart that crossed the phase boundary).
    assert "fault 1: SIGTERM at step" in output and "fault 2: SIGKILL at step 3" in output
    assert "newest checkpoint at step 30" in output
    assert output.rstrip().endswith(
        "faults injected: 2, survived: 2, steps lost beyond the last checkpoint: 0, "
        "final weights identical: yes"
    )
