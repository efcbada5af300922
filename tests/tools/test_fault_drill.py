import pytest

from tests.scripts import run_tool


@pytest.mark.slow
def test_four_kinds_of_faults_are_survived_with_the_uninterrupted_weights(
    tmp_path, builtin_data_dir
):
    output = run_tool(
        "tools/fault_drill.py",
        "--faults=4",
        "--seed=161",
        f"--work_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    # Seed 161 draws Ctrl-C after step 8 (phase 1), a restart with a
    # corrupted shard, a restart with another model, then SIGKILL after step
    # 28 (phase 2, after a restart that crossed the phase boundary).
    lines = output.splitlines()
    faults = [line for line in lines if line.startswith("fault ")]
    assert len(faults) == 4, output
    # Checkpointed after the steps in flight (two per host loop).
    assert faults[0].startswith("fault 1: SIGINT at step 8 (target 8), exit status 130")
    assert faults[0].endswith(("newest checkpoint at step 8", "newest checkpoint at step 10"))
    assert faults[1].startswith("fault 2: restart with bytes flipped in seq")
    assert faults[1].endswith(
        "exit status 1 (expected 1), cause named: yes, run files unchanged: yes"
    )
    assert faults[2] == (
        'fault 3: restart with train.model = "mini", exit status 2 (expected 2), cause named: '
        "yes, run files unchanged: yes"
    )
    assert faults[3].startswith("fault 4: SIGKILL at step 2") and "(expected -9)" in faults[3]
    assert output.rstrip().endswith(
        "faults injected: 4, survived: 4, steps lost beyond the last checkpoint: 0, "
        "final weights identical: yes"
    )
