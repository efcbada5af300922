"""The installed TensorFlow stack, checked from package metadata before
TensorFlow loads. Broken stacks are made with real distribution metadata
(`*.dist-info` folders) put first on the path of a fresh interpreter."""

import os

import pytest

from tests.scripts import run_process
from trainers import stack


def _with_distributions(tmp_path, **distributions):
    """PYTHONPATH holding metadata of `distributions` ({name: version})."""
    for name, version in distributions.items():
        info = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def test_this_environment_has_one_working_stack():
    assert stack.problems() == []
    name, version = stack.tensorflow_distribution()
    assert name in ("tensorflow", "tensorflow-tpu")
    assert f"{name} {version}" in stack.describe()
    assert run_process("-m", "trainers.stack").startswith(f"{name} {version}")


def test_a_second_tensorflow_distribution_stops_the_import_naming_both(tmp_path):
    name, version = stack.tensorflow_distribution()
    env = _with_distributions(tmp_path, **{"tensorflow-cpu": "2.19.0"})
    error = run_process("-c", "import trainers.bert", expect_status=2, env=env)
    # One line, no traceback: the distributions, and the fix; exit status 2,
    # as a command's for an install it cannot run on.
    assert error.count("\n") == 1 and error.startswith("lamb-tf: error: broken TensorFlow"), error
    assert f"{name} {version}" in error and "tensorflow-cpu 2.19.0" in error
    assert "bash tools/install_tpu.sh" in error and "pip uninstall -y" in error
    assert "error: 2 distributions provide" in run_process(
        "-m", "trainers.stack", expect_status=1, env=env
    )


def test_tensorflow_text_of_another_release_is_named(tmp_path):
    name, version = stack.tensorflow_distribution()
    env = _with_distributions(tmp_path, **{"tensorflow-text": "2.19.0"})
    error = run_process("-c", "import trainers.bert", expect_status=2, env=env)
    expected = f"tensorflow-text 2.19.0 is built for TensorFlow 2.19, but TensorFlow here is {name}"
    assert expected in error
    fix = stack.INSTALL_TPU if stack.is_tpu_build() else stack.INSTALL_CPU
    assert fix in error


@pytest.mark.skipif(not stack.is_tpu_build(), reason="tensorflow-tpu only (CI's TPU stack)")
def test_without_tpu_chips_the_tpu_build_does_not_load_libtpu():
    # libtpu would ask the GCE metadata server about the TPU for minutes.
    assert not stack.tpu_chips()
    assert os.environ["TPU_LOAD_LIBRARY"] == "0"


def test_require_names_the_package_and_the_install():
    stack.require("json", ["corpus"], "anything")  # installed: nothing happens
    with pytest.raises(stack.MissingPackage) as error:
        stack.require(
            "no_such_module", ["plots"], "--flag", "no-such-dist", alternative="--no_flag"
        )
    fix = stack.install_command(["plots"])
    assert (
        str(error.value)
        == f"--flag needs no-such-dist, which is not installed: {fix}; or --no_flag"
    )
    assert isinstance(error.value, ImportError)
    assert stack.missing("no_such_parent.child") and not stack.missing("json")


def test_the_install_command_keeps_the_tpu_build():
    if stack.is_tpu_build():
        assert stack.install_command(["cpu"]) == stack.INSTALL_TPU
        assert (
            stack.install_command(["cpu", "jax"])
            == 'pip install -c constraints-tpu.txt -e ".[jax]"'
        )
    else:
        assert (
            stack.install_command(["cpu", "jax"])
            == 'pip install -c constraints.txt -e ".[cpu,jax]"'
        )
