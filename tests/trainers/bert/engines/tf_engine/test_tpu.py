"""`--tpu` on a machine without a TPU: every way it fails is named before
any compute, with exit status 2 (or 1 past the start deadline), never a CPU
fallback, a native abort or a hang. Under TensorFlow's TPU build (CI's TPU
stack) the checks run on past the distribution, through the real libtpu."""

import _ctypes

import pytest

from tests.scripts import run_process
from trainers import stack
from trainers.bert.engines.tf_engine import tpu

TPU_BUILD = stack.is_tpu_build()
needs_tpu_build = pytest.mark.skipif(
    not TPU_BUILD, reason="tensorflow-tpu only (CI's TPU stack, tools/install_tpu.sh)"
)
# A shared library without TensorFlow's TPU API (Python's own ctypes module).
NOT_LIBTPU = _ctypes.__file__


def _pretrain(tmp_path, *flags, status=2, env=None):
    model_dir = tmp_path / "run"
    error = run_process(
        "-m",
        "trainers.bert.main",
        "--gin_file=gin_configs/tiny_cpu.gin",
        f"--model_dir={model_dir}",
        *flags,
        expect_status=status,
        env=env,
        timeout=300,
    )
    assert error.count("\n") == 1, error  # one line, no traceback
    return error, model_dir


def _tpu_error(tmp_path, *flags, status=2, env=None):
    error, model_dir = _pretrain(tmp_path, *flags, status=status, env=env)
    assert not model_dir.exists(), "nothing is written before the TPU starts"
    return error


def test_tpu_local_without_a_tpu_is_an_error_naming_the_cause(tmp_path):
    error = _tpu_error(tmp_path, "--tpu=local")
    if TPU_BUILD:
        assert "--tpu=local: no TPU on this machine (no /dev/accel* or /dev/vfio/*" in error
    else:
        name, version = stack.tensorflow_distribution()
        assert f"TensorFlow here is {name} {version}, which has no TPU support" in error
        assert "bash tools/install_tpu.sh" in error


def test_a_library_without_tensorflows_tpu_api_is_told_apart():
    assert not tpu.exports_tensorflow_api(NOT_LIBTPU)
    if TPU_BUILD:
        assert tpu.exports_tensorflow_api(tpu.libtpu_path())


@needs_tpu_build
def test_a_libtpu_built_for_jax_only_is_refused_before_it_aborts(tmp_path):
    # TensorFlow would load TPU_LIBRARY_PATH; one without the API aborts it.
    error = _tpu_error(tmp_path, "--tpu=local", env={"TPU_LIBRARY_PATH": NOT_LIBTPU})
    assert f"{NOT_LIBTPU} (libtpu {stack.version('libtpu')}) lacks TensorFlow's TPU C API" in error
    assert "bash tools/install_tpu.sh" in error


@needs_tpu_build
def test_a_libtpu_path_that_is_not_a_file_is_named(tmp_path):
    error = _tpu_error(tmp_path, "--tpu=local", env={"TPU_LIBRARY_PATH": str(tmp_path / "no.so")})
    assert f"TPU_LIBRARY_PATH={tmp_path / 'no.so'} is not a file" in error


@needs_tpu_build
def test_a_tpu_name_that_does_not_resolve_is_named(tmp_path):
    error = _tpu_error(tmp_path, "--tpu=no-such-tpu")
    assert "--tpu=no-such-tpu: no TPU found by that name" in error


@needs_tpu_build
def test_a_tpu_that_never_answers_stops_at_the_start_deadline(tmp_path):
    # Nothing listens there: connecting would wait without end.
    error = _tpu_error(
        tmp_path,
        "--tpu=grpc://127.0.0.1:9",
        status=1,
        env={tpu.START_TIMEOUT: "5"},
    )
    assert "--tpu=grpc://127.0.0.1:9: the TPU system did not start within 5 s" in error


def test_the_deadline_ends_a_stuck_native_call_with_status_1():
    stuck = (
        "import time\n"
        "from trainers.bert.engines.tf_engine import tpu\n"
        "with tpu.deadline(1, 'the TPU system did not start within 1 s'):\n"
        "    time.sleep(60)\n"
    )
    error = run_process("-c", stuck, expect_status=1, timeout=60)
    assert error.endswith("error: the TPU system did not start within 1 s\n")


def test_float16_is_refused_on_the_tpu_branches(tmp_path):
    error, model_dir = _pretrain(
        tmp_path, "--strategy=tpu_rehearsal", '--gin_param=train.precision = "mixed_float16"'
    )
    assert not (model_dir / "run.json").exists() and not (model_dir / "checkpoints").exists()
    assert 'train.precision="mixed_float16" cannot run on a TPU: use "mixed_bfloat16"' in error
