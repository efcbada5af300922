"""The installed stack, checked before TensorFlow or Keras is imported:
one distribution provides the `tensorflow` package, tensorflow-text is built
for its release (from package metadata), the package of Keras' backend is
there, and `require` for each optional package a command, flag or input
needs. A broken or incomplete install fails before anything is written,
with one line naming the package and the command that installs it (exit
status 2 from a command), not with a traceback, a native crash or an op
that will not load mid-run.

    python -m trainers.stack           prints the stack; exit status 1 if broken
"""

import contextlib
import glob
import importlib.metadata
import importlib.util
import json
import os
import sys

# Distributions that install the `tensorflow` package; two of them in one
# environment write over each other's files.
TENSORFLOW_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-tpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tf-nightly",
    "tf-nightly-cpu",
    "tf-nightly-tpu",
)
TPU_DISTRIBUTIONS = ("tensorflow-tpu", "tf-nightly-tpu")
INSTALL_TPU = "bash tools/install_tpu.sh"
INSTALL_CPU = 'pip install -c constraints.txt -e ".[cpu]"'
SHOWN = ("libtpu", "tensorflow-text", "keras", "keras-hub")
# The device files of a TPU VM's chips (v2 to v4: accel; v5e, v5p, v6e: vfio).
TPU_DEVICE_FILES = ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*")
# What the training commands import besides TensorFlow and Keras, {module:
# distribution}: setup.py's `trainer` extra and keras-hub (in the cpu and gpu
# extras; tools/install_tpu.sh installs it beside tensorflow-tpu).
TRAINER_MODULES = {
    "absl": "absl-py",
    "gin": "gin-config",
    "numpy": "numpy",
    "tokenizers": "tokenizers",
    "tensorboard": "tensorboard",
    "h5py": "h5py",
    "keras_hub": "keras-hub",
}
# Keras' backends, {name: its module}; the trainer runs on the first two.
KERAS_BACKENDS = {
    "tensorflow": "tensorflow",
    "jax": "jax",
    "torch": "torch",
    "numpy": "numpy",
    "openvino": "openvino",
}
CONFIG_STATUS = 2  # a command's exit status for an install it cannot run on (as trainers.bert.cli)


class StackError(ImportError):
    """The installed stack cannot work."""


class MissingPackage(StackError):
    """An optional package that a command, flag or input needs is not installed."""


def version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def tensorflow_distributions():
    """{distribution: version} of those installed that provide `tensorflow`."""
    found = {name: version(name) for name in TENSORFLOW_DISTRIBUTIONS}
    return {name: v for name, v in found.items() if v is not None}


def tensorflow_distribution():
    """(name, version) of the one installed TensorFlow, or None."""
    found = tensorflow_distributions()
    return next(iter(found.items())) if len(found) == 1 else None


def is_tpu_build():
    found = tensorflow_distribution()
    return found is not None and found[0] in TPU_DISTRIBUTIONS


def problems(tensorflow_required=None):
    """What is wrong with the installed stack, as sentences that name the
    distributions and the fix; empty when it can work. TensorFlow may be
    absent on Keras' JAX backend (`tensorflow_required` None: unless
    KERAS_BACKEND=jax): the JAX engine's model and steps run without it,
    and only the input (tf.data) needs it (`require_tensorflow`)."""
    found = tensorflow_distributions()
    if tensorflow_required is None:
        tensorflow_required = keras_backend()[0] != "jax"
    if not found:
        if not tensorflow_required:
            return []
        return [
            "no TensorFlow is installed: the trainer needs one; "
            f"`{INSTALL_CPU}` (CPU, GPU) or `{INSTALL_TPU}` (TPU VM)"
        ]
    if len(found) > 1:
        listed = ", ".join(f"{name} {v}" for name, v in found.items())
        return [
            f"{len(found)} distributions provide the `tensorflow` package ({listed}) and "
            "overwrite each other's files; on a TPU VM run "
            f"`{INSTALL_TPU}` (it keeps only tensorflow-tpu), elsewhere "
            f"`pip uninstall -y {' '.join(found)}` then `{INSTALL_CPU}`"
        ]
    (name, tf_version), text_version = next(iter(found.items())), version("tensorflow-text")
    if text_version is not None and _release(text_version) != _release(tf_version):
        fix = INSTALL_TPU if name in TPU_DISTRIBUTIONS else INSTALL_CPU
        return [
            f"tensorflow-text {text_version} is built for TensorFlow "
            f"{_release(text_version)}, but TensorFlow here is {name} {tf_version}: "
            f"its ops cannot load; reinstall with `{fix}`"
        ]
    return []


def check(tensorflow_required=None):
    """Raises `StackError` when `problems()` finds any, or when the package
    of Keras' backend is not installed (`check_backend`). Run without a
    prompt (a command), the error is printed as one line and the process
    exits with status 2."""
    found = problems(tensorflow_required)
    if found:
        _raise(StackError("broken TensorFlow install: " + "; ".join(found)))
    check_backend()


def check_trainer():
    """`check` for the training commands: TensorFlow (their input is read
    through tf.data) and every package of `TRAINER_MODULES`."""
    check(tensorflow_required=True)
    absent = [distribution for module, distribution in TRAINER_MODULES.items() if missing(module)]
    if absent:
        which = "is" if len(absent) == 1 else "are"
        _raise(
            MissingPackage(
                f"the trainer needs {' and '.join(absent)}, which {which} not installed: "
                f"{install_command(['cpu'])}"
            )
        )


def keras_backend():
    """(the backend Keras will load, where that is set), read as Keras reads
    it but without importing Keras: KERAS_BACKEND, else the "backend" of
    keras.json in KERAS_HOME (default ~/.keras), else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}"
    home = os.environ.get("KERAS_HOME")
    if home is None:
        user = os.path.expanduser("~")
        home = os.path.join(user if os.access(user, os.W_OK) else "/tmp", ".keras")
    path = os.path.expanduser(os.path.join(home, "keras.json"))
    try:
        with open(path, encoding="utf-8") as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    if isinstance(backend, str) and backend:
        return backend, f"Keras' backend {backend} (set in {path})"
    return "tensorflow", "Keras' default backend"


def check_backend():
    """Raises `StackError` when Keras would fail to load its backend: one
    it does not have, or one whose package is not installed (TensorFlow's
    is `problems`')."""
    backend, source = keras_backend()
    if backend not in KERAS_BACKENDS:
        _raise(
            StackError(
                f"{source}: Keras has no such backend; the trainer runs on "
                "KERAS_BACKEND=tensorflow (the default) or KERAS_BACKEND=jax"
            )
        )
    if backend == "jax":
        require("jax", ["cpu", "jax"], source, "JAX")
    elif backend != "tensorflow" and missing(KERAS_BACKENDS[backend]):
        _raise(
            MissingPackage(
                f"{source} needs {KERAS_BACKENDS[backend]}, which is not installed; the trainer "
                "runs on KERAS_BACKEND=tensorflow (the default) or KERAS_BACKEND=jax"
            )
        )


def missing(module):
    """Whether `module` cannot be imported (not installed, or hidden by a
    None in sys.modules), found without importing it."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package is absent or broken
        return True


def require(module, extras, what, package=None, alternative=None):
    """Raises `MissingPackage` when `module` cannot be imported, with one
    line: `what` (a command, flag, file or setting) needs `package` (the
    distribution, default `module`), and the command that installs
    setup.py's `extras` here; `alternative`: a way to run without it. Call
    it before anything is written."""
    if missing(module):
        fix = install_command(extras) + (f"; or {alternative}" if alternative else "")
        _raise(MissingPackage(f"{what} needs {package or module}, which is not installed: {fix}"))


def require_jax_engine(what, alternative=None):
    """`require` for the JAX engine (`what` asks for it): JAX, and
    orbax-checkpoint, which writes its checkpoints."""
    for module, package in (("jax", "JAX"), ("orbax.checkpoint", "orbax-checkpoint")):
        require(module, ["cpu", "jax"], what, package, alternative)


def install_command(extras):
    """The command that installs setup.py's `extras` into this environment.
    On TensorFlow's TPU build the cpu and gpu extras are left out (their
    `tensorflow` would be installed over tensorflow-tpu): tools/install_tpu.sh
    installs what they hold."""
    if is_tpu_build():
        extras = [extra for extra in extras if extra not in ("cpu", "gpu")]
        if not extras:
            return INSTALL_TPU
        return f'pip install -c constraints-tpu.txt -e ".[{",".join(extras)}]"'
    return f'pip install -c constraints.txt -e ".[{",".join(extras)}]"'


def tpu_chips():
    """This machine's TPU device files (none off a TPU VM)."""
    return [path for pattern in TPU_DEVICE_FILES for path in glob.glob(pattern)]


def skip_libtpu_without_chips():
    """TensorFlow's TPU build loads libtpu while it imports, and libtpu then
    asks the GCE metadata server about the TPU for minutes when there is
    none to answer. With no TPU chips here, TensorFlow is told not to load
    it (TPU_LOAD_LIBRARY=0, unless set): a CPU machine imports it in seconds."""
    if is_tpu_build() and not tpu_chips():
        os.environ.setdefault("TPU_LOAD_LIBRARY", "0")


def describe():
    """One line naming the installed stack."""
    found = tensorflow_distributions() or {"tensorflow": None}
    parts = [f"{name} {v}" for name, v in found.items()]
    parts += [f"{name} {v}" for name in SHOWN if (v := version(name)) is not None]
    return ", ".join(parts)


def _release(text):
    return ".".join(text.split(".")[:2])


def _interactive():
    """At a prompt or in a notebook (a running IPython shell, not merely its
    module, which libraries such as TensorFlow's may import)."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    ipython = sys.modules.get("IPython")
    return getattr(ipython, "get_ipython", lambda: None)() is not None


def _raise(error):
    """Raises `error`; run without a prompt (a command), an uncaught one is
    printed as one line and the process exits with status 2. (Raised inside
    a command's main, `trainers.bert.cli` prints it, with the command's name.)"""
    if not _interactive():
        _one_line_on_exit()
    raise error


def _one_line_on_exit():
    previous = sys.excepthook
    if getattr(previous, "lamb_tf", False):
        return

    def hook(kind, error, traceback):
        if not isinstance(error, StackError):
            return previous(kind, error, traceback)
        print(f"lamb-tf: error: {error}", file=sys.stderr, flush=True)
        # An uncaught exception exits with status 1; an install that cannot
        # run is a command's status 2. Nothing was written before.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os._exit(CONFIG_STATUS)

    hook.lamb_tf = True
    sys.excepthook = hook


def main():
    print(describe())
    found = problems()
    absent = [name for module, name in TRAINER_MODULES.items() if missing(module)]
    if absent:
        found.append(f"not installed: {', '.join(absent)}: {install_command(['cpu'])}")
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
