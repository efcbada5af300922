import pytest

from tests.scripts import assert_one_line, run_process, run_tool, without
from trainers import stack


@pytest.mark.slow
def test_a_tpu_rehearsal_survives_three_kinds_of_faults_with_the_uninterrupted_weights(
    tmp_path, builtin_data_dir
):
    # The TPU branches: no input position in checkpoints, so every restart
    # skips the batches already done (a batch per replica per step). The
    # CPU path's resumes are compared in tests/trainers/bert/test_train.py,
    # test_fault_tolerance.py and test_multi_worker.py.
    output = run_tool(
        "tools/fault_drill.py",
        "--strategy=tpu_rehearsal",
        "--faults=3",
        "--seed=161",
        f"--work_dir={tmp_path}",
        f"--data_dir={builtin_data_dir}",
    )
    # Seed 161 draws Ctrl-C after step 8 (phase 1), a restart with a
    # corrupted shard, a restart with another model; the last start resumes
    # in phase 1 and crosses the phase boundary.
    lines = output.splitlines()
    faults = [line for line in lines if line.startswith("fault ")]
    assert len(faults) == 3, output
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
    assert output.rstrip().endswith(
        "faults injected: 3, survived: 3, steps lost beyond the last checkpoint: 0, "
        "final weights identical: yes"
    )


def test_the_jax_engine_without_orbax_stops_before_the_first_run(tmp_path):
    work = tmp_path / "work"
    stderr = run_process(
        "tools/fault_drill.py",
        "--engine=jax",
        f"--work_dir={work}",
        expect_status=2,
        env=without(tmp_path / "site", "orbax", "orbax.checkpoint"),
    )
    fix = stack.install_command(["cpu", "jax"])
    assert_one_line(stderr, f"--engine=jax needs orbax-checkpoint, which is not installed: {fix}")
    assert not work.exists()
