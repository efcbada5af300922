"""The installed TensorFlow stack, checked from package metadata before
TensorFlow is imported: one distribution provides the `tensorflow` package,
and tensorflow-text is built for its release. A broken stack fails at import
with a message naming the distributions and the fix, not with a native
crash or an op that will not load mid-run.

    python -m trainers.stack           prints the stack; exit status 1 if broken
"""

import glob
import importlib.metadata
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
INSTALL_CPU = "pip install -c constraints.txt 'lamb-tf[cpu]'"
SHOWN = ("libtpu", "tensorflow-text", "keras", "keras-hub")
# The device files of a TPU VM's chips (v2 to v4: accel; v5e, v5p, v6e: vfio).
TPU_DEVICE_FILES = ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*")


class StackError(ImportError):
    """The installed TensorFlow stack cannot work."""


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
        tensorflow_required = os.environ.get("KERAS_BACKEND") != "jax"
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
    """Raises `StackError` when `problems()` finds any. Run without a
    prompt (a command), the error is printed as one line."""
    found = problems(tensorflow_required)
    if found:
        if not _interactive():
            _one_line_on_exit()
        raise StackError("broken TensorFlow install: " + "; ".join(found))


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
    return hasattr(sys, "ps1") or sys.flags.interactive or "IPython" in sys.modules


def _one_line_on_exit():
    previous = sys.excepthook

    def hook(kind, error, traceback):
        if isinstance(error, StackError):
            print(f"lamb-tf: error: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    sys.excepthook = hook


def main():
    print(describe())
    found = problems()
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
