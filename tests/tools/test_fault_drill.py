import pytest

from tests.scripts import run_tool


@pytest.mark.slow
def test_three_faults_are_survived_with_the_uninterrupted_weights(tmp_path, builtin_data_dir):
    output = run_tool(
        "tools/fault_drill.py",
        "--faults=3",
        "--seed=7",
        f"--work_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    # Seed 7 draws SIGKILL, SIGKILL, SIGTERM at steps 6, 11 and 21.
    for fault, name in enumerate(("SIGKILL", "SIGKILL", "SIGTERM"), 1):
        assert f"fault {fault}: {name} at step" in output
    assert output.rstrip().endswith(
        "faults injected: 3, survived: 3, steps lost beyond the last checkpoint: 0, "
        "final weights identical: yes"
    )
