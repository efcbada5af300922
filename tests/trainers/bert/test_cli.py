"""Every command: errors as one line with an exit status, a quiet start."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import requires
from tests.scripts import ROOT, assert_one_line, run_process, without
from trainers import stack
from trainers.bert import cli
from trainers.bert.errors import ConfigError, DataError, TrainingError


def _run(error, capsys, monkeypatch, verbose=False):
    """Runs a command whose main raises `error`: (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["a-command"])
    if verbose:
        monkeypatch.setenv(cli.VERBOSE, "1")
    else:
        monkeypatch.delenv(cli.VERBOSE, raising=False)

    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exit_:
        cli.run(main, name="a-command")
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "error, status, line",
    [
        (ConfigError("train.seed must be an integer >= 0, got -1"), 2, "train.seed must be"),
        (DataError("/data/a.tfrecord: holds no records"), 1, "/data/a.tfrecord: holds no records"),
        (TrainingError("phase 1, step 4: stopping"), 1, "phase 1, step 4: stopping"),
        (FileNotFoundError(2, "No such file or directory", "/x/vocab.txt"), 1, "/x/vocab.txt: No"),
        (
            tf.errors.NotFoundError(
                None, None, "{{function_node __wrapped__X}} /x/y not found [Op:ReadFile] name: "
            ),
            1,
            "/x/y not found",
        ),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_errors_a_user_can_act_on_are_one_line(error, status, line, capsys, monkeypatch):
    code, stderr = _run(error, capsys, monkeypatch)
    assert code == status
    assert stderr.startswith(f"a-command: error: {line}") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "{{function_node" not in stderr and "[Op:" not in stderr


def test_gin_call_context_is_left_out(capsys, monkeypatch):
    error = ConfigError(
        "train.clip_norm must be a finite number\n  In call to configurable 'train'"
    )
    code, stderr = _run(error, capsys, monkeypatch)
    assert code == 2 and "In call to configurable" not in stderr


def test_a_bug_keeps_its_traceback(capsys, monkeypatch):
    with pytest.raises(ZeroDivisionError):
        _run(ZeroDivisionError("division by zero"), capsys, monkeypatch)


def test_verbose_shows_the_traceback(capsys, monkeypatch):
    with pytest.raises(ConfigError):
        _run(ConfigError("train.seed"), capsys, monkeypatch, verbose=True)


def test_tensorflow_starts_quietly():
    # No CUDA probing, oneDNN notice or absl pre-init warning on stderr.
    code = (
        "from trainers.bert import cli; cli.quiet_tensorflow(); import tensorflow as tf; tf.ones(1)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", cli.VERBOSE)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == ""


def test_the_data_tool_names_an_empty_input_in_one_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    stderr = run_process(
        "-m",
        "trainers.bert.data",
        f"--input_file={empty}",
        f"--output_dir={tmp_path / 'out'}",
        expect_status=1,
    )
    assert stderr.startswith("bert-create-pretraining-data: error: ") and str(empty) in stderr
    assert stderr.count("\n") == 1, stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


# A missing package: one line naming it and the command that installs it,
# exit status 2, before anything is written (the model_dir is not made).
PRETRAIN = ("-m", "trainers.bert.main", "--gin_file=gin_configs/tiny_cpu.gin")
FINETUNE = ("-m", "trainers.bert.finetune.main", "--gin_file=gin_configs/finetune_tiny_cpu.gin")
JAX = {"KERAS_BACKEND": "jax"}


@pytest.mark.parametrize(
    "command, env, hidden, line",
    [
        # The README's JAX command where only [cpu] is installed.
        (
            (*PRETRAIN, "--engine=jax"),
            JAX,
            ["jax"],
            "lamb-tf: error: KERAS_BACKEND=jax needs JAX, which is not installed: ",
        ),
        (
            (*PRETRAIN, "--engine=jax"),
            JAX,
            ["orbax", "orbax.checkpoint"],
            "bert-pretrain: error: --engine=jax needs orbax-checkpoint, which is not installed: ",
        ),
        # TensorFlow installed without the trainer's packages.
        (PRETRAIN, {}, ["gin"], "lamb-tf: error: the trainer needs gin-config, which is not "),
        (FINETUNE, {}, ["keras_hub"], "lamb-tf: error: the trainer needs keras-hub, which is not "),
    ],
    ids=["jax", "orbax", "gin", "keras-hub"],
)
def test_a_missing_package_is_one_line_naming_the_install(command, env, hidden, line, tmp_path):
    model_dir = tmp_path / "run"
    stderr = run_process(
        *command,
        f"--model_dir={model_dir}",
        expect_status=2,
        env={**env, **without(tmp_path / "site", *hidden)},
    )
    extras = ["cpu", "jax"] if env else ["cpu"]
    assert_one_line(stderr, line, stack.install_command(extras))
    assert stderr.startswith(line), stderr
    assert not model_dir.exists()


def test_the_data_tool_without_tokenizers(tmp_path):
    out = tmp_path / "out"
    stderr = run_process(
        "tools/create_pretraining_data.py",
        f"--output_dir={out}",
        expect_status=2,
        env=without(tmp_path / "site", "tokenizers"),
    )
    assert_one_line(stderr, "bert-create-pretraining-data needs tokenizers, which is not ")
    assert stack.install_command(["cpu"]) in stderr and not out.exists()


@pytest.mark.parametrize(
    "backend, line",
    [
        ("jaxx", "KERAS_BACKEND=jaxx: Keras has no such backend"),
        ("torch", "KERAS_BACKEND=torch needs torch, which is not installed"),
    ],
)
def test_a_keras_backend_that_cannot_load_is_one_line(backend, line, tmp_path):
    env = {"KERAS_BACKEND": backend, **without(tmp_path / "site", "torch")}
    stderr = run_process(*PRETRAIN, f"--model_dir={tmp_path / 'run'}", expect_status=2, env=env)
    assert_one_line(stderr, line, "KERAS_BACKEND=tensorflow (the default) or KERAS_BACKEND=jax")
    assert not (tmp_path / "run").exists()


def test_the_backend_set_in_keras_json_is_named(tmp_path, monkeypatch):
    (tmp_path / "keras.json").write_text('{"backend": "jax", "floatx": "float32"}')
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert stack.keras_backend() == ("jax", f"Keras' backend jax (set in {tmp_path}/keras.json)")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # the variable wins, as in Keras
    assert stack.keras_backend() == ("tensorflow", "KERAS_BACKEND=tensorflow")


def test_the_data_tool_writes_nothing_on_stderr(tmp_path):
    # No absl INFO line ("I1206 ... create.py:87] Training a 1000-token
    # WordPiece vocabulary ...") and no TensorFlow start-up line on a run that
    # works: stderr is for errors. The environment is a user's, without the
    # tests' TF_CPP_MIN_LOG_LEVEL.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", cli.VERBOSE)}
    args = ["--vocab_size=1000", "--dupe_factor=1", "--num_shards=1", "--num_workers=1"]
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.bert.data", f"--output_dir={tmp_path}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (tmp_path / "manifest.json").exists() and "instances" in proc.stdout


def test_fine_tuning_on_an_engine_of_another_backend_names_the_variable(tmp_path):
    requires("jax", "jax")
    model_dir = f"--model_dir={tmp_path / 'run'}"
    stderr = run_process(*FINETUNE, "--engine=tf", model_dir, expect_status=2, env=JAX)
    assert_one_line(
        stderr,
        "bert-finetune: error: --engine=tf runs on Keras' tensorflow backend, and Keras runs on "
        "jax: set KERAS_BACKEND=tensorflow (or --engine=jax)",
    )
    stderr = run_process(
        *FINETUNE, "--engine=jax", "--tpu=local", model_dir, expect_status=2, env=JAX
    )
    assert_one_line(stderr, "--tpu and --strategy choose tf.distribute's devices")
    assert not (tmp_path / "run").exists()
