"""Every command: errors as one line with an exit status, a quiet start."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.scripts import ROOT, run_process
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
