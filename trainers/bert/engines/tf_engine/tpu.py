"""Reaching a TPU from TensorFlow, every known way of failing named before
any compute: a TensorFlow without TPU support, a libtpu without TensorFlow's
TPU C API (a JAX-only build, with which starting the TPU system aborts the
whole process), no TPU on this machine, a TPU name that does not resolve, a
TPU system that does not start in time. Never a CPU fallback."""

import importlib.util
import os
import subprocess
import sys
import threading

import tensorflow as tf

from trainers import stack
from trainers.bert import cli
from trainers.bert.errors import ConfigError

# The entry point TensorFlow calls to start the TPU system
# (tf.tpu.experimental.initialize_tpu_system). libtpu builds for JAX only
# lack it; the build pinned in constraints-tpu.txt has it.
TENSORFLOW_TPU_API = "ConfigureDistributedTpuOp_DoWork"
# Seconds the TPU system may take to start before the run is stopped (a
# slice whose other hosts never start would otherwise wait forever).
START_TIMEOUT = "LAMB_TF_TPU_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 900


def strategy(tpu):
    """A `TPUStrategy` on `tpu` ("local", a TPU name, or a grpc:// address)
    once it has started, or a `ConfigError` naming why not."""
    check_support(tpu)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    except (ValueError, RuntimeError, ImportError, OSError) as error:
        raise ConfigError(f"--tpu={tpu}: no TPU found by that name: {error}") from None
    timeout = float(os.environ.get(START_TIMEOUT, DEFAULT_START_TIMEOUT_S))
    with deadline(timeout, f"--tpu={tpu}: the TPU system did not start within {timeout:.0f} s"):
        try:
            if tpu != "local":
                tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (tf.errors.OpError, ValueError, RuntimeError) as error:
            raise ConfigError(f"--tpu={tpu}: the TPU system did not start: {error}") from None
    return tf.distribute.TPUStrategy(resolver)


def check_support(tpu):
    """Raises `ConfigError` when `--tpu` cannot work in this environment."""
    found = stack.tensorflow_distribution()
    if not stack.is_tpu_build():
        name = "{} {}".format(*found) if found else "no single TensorFlow distribution"
        raise ConfigError(
            f"--tpu={tpu}: TensorFlow here is {name}, which has no TPU support; "
            "TensorFlow's TPU build is tensorflow-tpu (last released for 2.20): on "
            f"every TPU VM host run `{stack.INSTALL_TPU}`"
        )
    library = libtpu_path()
    if library is None:
        raise ConfigError(
            f"--tpu={tpu}: {found[0]} is installed without libtpu: `{stack.INSTALL_TPU}`"
        )
    if not os.path.isfile(library):
        raise ConfigError(f"--tpu={tpu}: TPU_LIBRARY_PATH={library} is not a file")
    if not exports_tensorflow_api(library):
        raise ConfigError(
            f"--tpu={tpu}: {library} (libtpu {stack.version('libtpu')}) lacks TensorFlow's "
            f"TPU C API ({TENSORFLOW_TPU_API}): it is a build for JAX; "
            f"`{stack.INSTALL_TPU}` installs the libtpu TensorFlow 2.20 needs"
        )
    if tpu == "local" and not stack.tpu_chips():
        raise ConfigError(
            "--tpu=local: no TPU on this machine (no /dev/accel* or /dev/vfio/* device "
            "files); run on the TPU VM itself (on every host of a slice), or in Colab on a "
            "TPU runtime"
        )


def libtpu_path():
    """The libtpu TensorFlow will load: TPU_LIBRARY_PATH, else the libtpu
    package's (None: no such package)."""
    if os.environ.get("TPU_LIBRARY_PATH"):
        return os.environ["TPU_LIBRARY_PATH"]
    spec = importlib.util.find_spec("libtpu")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(spec.submodule_search_locations[0], "libtpu.so")


def exports_tensorflow_api(library):
    """Whether `library` exports TensorFlow's TPU C API. Loaded in a child
    process: this one must load it only through TensorFlow."""
    probe = f"import ctypes, sys; ctypes.CDLL(sys.argv[1]).{TENSORFLOW_TPU_API}"
    result = subprocess.run(
        [sys.executable, "-c", probe, library], capture_output=True, timeout=300
    )
    return result.returncode == 0


class deadline:
    """A `with` block that must end within `seconds`: past that, `message`
    is printed as the command's error line and the process exits with
    status 1 (a native call cannot be interrupted any other way)."""

    def __init__(self, seconds, message):
        self._timer = threading.Timer(seconds, cli.abort, (message, cli.RUNTIME_STATUS))
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
