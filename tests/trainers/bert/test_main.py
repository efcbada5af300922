"""The entry point: gin files and flags, as a user runs it."""

import os
import re

import pytest

from tests.scripts import ROOT, run_process


@pytest.mark.slow
def test_tiny_cpu_config_runs_both_phases(tmp_path):
    # The README's main job, shortened by bindings on the command line.
    stdout = run_process(
        "-m",
        "trainers.bert.main",
        "--gin_file=gin_configs/tiny_cpu.gin",
        "--gin_param=phase1/Phase.steps = 4",
        "--gin_param=phase1/Phase.warmup_steps = 2",
        "--gin_param=phase2/Phase.steps = 2",
        "--gin_param=phase2/Phase.warmup_steps = 1",
        "--gin_param=train.steps_per_loop = 2",
        "--gin_param=train.eval_steps = 1",
        f"--model_dir={tmp_path}",
    )
    assert "phase 1 [####################] 4/4" in stdout
    assert "phase 2 [####################] 2/2" in stdout
    assert "encoder exported" in stdout
    operative = (tmp_path / "operative_config.gin").read_text()
    assert "LAMB.weight_decay = 0.01" in operative
    assert "--gin_file=gin_configs/tiny_cpu.gin" in (tmp_path / "flags.txt").read_text()


@pytest.mark.parametrize("config", sorted(os.listdir(ROOT / "gin_configs")))
def test_every_config_parses_and_opens_with_its_command(config):
    import gin

    from trainers.bert import train
    from trainers.bert.finetune import datasets
    from trainers.bert.finetune import train as finetune

    text = (ROOT / "gin_configs" / config).read_text()
    fine_tuning = "\nfinetune." in text
    command = "trainers.bert.finetune.main" if fine_tuning else "trainers.bert.main"
    header = text.split("\n\n")[0]
    assert f"python -m {command}" in header
    assert re.search(r"\b(CPU|GPU|TPU)", header) and "Expected" in header
    gin.clear_config()
    try:
        gin.parse_config_file(str(ROOT / "gin_configs" / config))
        if fine_tuning:
            assert gin.query_parameter("finetune.task") in datasets.TASKS
            settings = finetune.FineTuning(encoder="given by --encoder")
        else:
            assert len(gin.query_parameter("train.phases")) == 2
            settings = train.Pretraining()
    finally:
        gin.clear_config()
    assert settings.notes == []  # every binding is read


@pytest.mark.parametrize(
    "name", ["lamb_tf.LAMB", "lamb_tf.LARS", "keras.optimizers.AdamW", "keras.optimizers.Lamb"]
)
def test_a_gin_file_names_the_optimizer_and_its_constructor_arguments(name):
    import gin
    import keras

    import lamb_tf
    from trainers.bert import train  # noqa: F401  (registers the configurables)

    classes = {
        "lamb_tf.LAMB": lamb_tf.LAMB,
        "lamb_tf.LARS": lamb_tf.LARS,
        "keras.optimizers.AdamW": keras.optimizers.AdamW,
        "keras.optimizers.Lamb": keras.optimizers.Lamb,
    }

    gin.clear_config()
    try:
        gin.parse_config([f"train.optimizer = @{name}", f"{name}.weight_decay = 0.02"])
        optimizer = gin.query_parameter("train.optimizer").scoped_configurable_fn()
    finally:
        gin.clear_config()
    assert type(optimizer) is classes[name] and optimizer.weight_decay == 0.02


TINY = "--gin_file=gin_configs/tiny_cpu.gin"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gin_param=train.stepz_per_loop = 2"], "doesn't have a parameter named 'stepz_per_"),
        (["--gin_file=missing.gin"], "--gin_file=missing.gin does not exist"),
        ([TINY, "--tpu=local", "--strategy=mirrored"], "--tpu"),
        ([TINY, "--bogus=1"], "Unknown command line flag 'bogus'"),
        ([TINY, "--gin_param=train.clip_norm = 1e999"], "train.clip_norm must be a finite"),
        ([TINY, "--gin_param=phase1/Phase.steps = 2.5"], "steps must be an integer >= 1"),
        ([TINY, "--gin_param=lamb_tf.LAMB.weight_decay = 1e999"], "train.optimizer: `weight_"),
        ([TINY, "--gin_param=phse2/Phase.warmup_steps = 5"], "no Phase is made in scope 'phse2'"),
        (
            ["--gin_file=gin_configs/finetune_tiny_cpu.gin"],
            "run it with python -m trainers.bert.fi",
        ),
    ],
)
def test_bad_flags_and_bindings_fail_in_one_line_with_status_2(tmp_path, args, message):
    stderr = run_process(
        "-m", "trainers.bert.main", *args, f"--model_dir={tmp_path}", expect_status=2
    )
    assert stderr.startswith("bert-pretrain: error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "LAMB_TF_VERBOSE" not in stderr  # the line says all a traceback would
    assert os.listdir(tmp_path) == []


def test_the_traceback_is_there_when_asked_for(tmp_path):
    stderr = run_process(
        "-m",
        "trainers.bert.main",
        "--gin_file=missing.gin",
        f"--model_dir={tmp_path}",
        expect_status=1,  # absl's status for an uncaught error
        env={"LAMB_TF_VERBOSE": "1"},
    )
    assert "Traceback (most recent call last)" in stderr and "ConfigError" in stderr
