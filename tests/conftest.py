"""Test set-up: quiet TensorFlow, and two logical CPU devices for the
distribution tests (must happen before TensorFlow initialises its devices);
`requires` for the tests of optional packages."""

import importlib
import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The tests run on CPUs: JAX must not look for the TPU of a libtpu it finds.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from trainers.bert import cli  # noqa: E402

cli.quiet_tensorflow()  # also for the commands the tests start

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


import pytest  # noqa: E402

from trainers import stack  # noqa: E402

# CI names the stack a suite runs on (.ci/run): a package the stack installs
# must be there, and a test that needs it fails rather than skips. The
# extras whose packages each stack has: `.[cpu,test]`, and tools/install_tpu.sh's
# `[trainer,test]` with tensorflow-tpu; [cpu] holds the packages of [trainer],
# and [test] those of [jax], [plots] and [corpus] (setup.py).
CI_STACK = "LAMB_TF_CI_STACK"
CI_EXTRAS = {
    "cpu": {"cpu", "trainer", "test", "jax", "plots", "corpus"},
    "tpu": {"trainer", "test", "jax", "plots", "corpus"},
}


def pytest_configure(config):
    """Under CI the stack must be the one named: the tests that skip off
    TensorFlow's TPU build (or only on it) would otherwise pass by skipping."""
    name = os.environ.get(CI_STACK)
    if name is None:
        return
    if name not in CI_EXTRAS:
        raise pytest.UsageError(f"{CI_STACK}={name!r}: not one of {sorted(CI_EXTRAS)}")
    if (name == "tpu") != stack.is_tpu_build():
        found = stack.tensorflow_distribution()
        raise pytest.UsageError(
            f"{CI_STACK}={name}, but the TensorFlow installed is "
            f"{found[0] if found else 'none or several'}"
        )


def requires(module, extra):
    """`module`, imported. Where it is not installed the test skips (a
    developer's environment without the extra `extra`), except on a CI stack
    (`LAMB_TF_CI_STACK`) that installs that extra: there it fails, naming
    both. A module that is installed but fails to import fails everywhere."""
    try:
        installed = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is absent
        installed = False
    if not installed:
        name = os.environ.get(CI_STACK)
        if name is not None and extra in CI_EXTRAS.get(name, ()):
            pytest.fail(
                f"{module} is not installed, but CI's {name} stack installs it "
                f"(the [{extra}] extra: pip install -e '.[{extra}]')",
                pytrace=False,
            )
        pytest.skip(
            f"{module} is not installed (the [{extra}] extra: pip install -e '.[{extra}]')",
            allow_module_level=True,
        )
    return importlib.import_module(module)


def pytest_collection_modifyitems(items):
    """Slow tests first: under pytest-xdist the longest ones start at once
    and the short ones fill the other worker, rather than a long test
    starting last while the other worker waits."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def two_cpus():
    """One MirroredStrategy over the two logical CPUs, shared by every test:
    strategies built later in the same process would reuse the collective
    instance keys of earlier ones and clash with their cached shapes."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2
    return tf.distribute.MirroredStrategy(devices)


@pytest.fixture(scope="session")
def builtin_data_dir(tmp_path_factory):
    """Where trainer and tool tests make (once) and share built-in data."""
    return str(tmp_path_factory.mktemp("builtin_data"))
