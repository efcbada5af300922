"""Test set-up: quiet TensorFlow, and two logical CPU devices for the
distribution tests (must happen before TensorFlow initialises its devices)."""

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
