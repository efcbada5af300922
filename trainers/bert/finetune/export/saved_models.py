"""Writing a SavedModel from an export folder under Keras' tensorflow
backend, whichever backend the calling process runs: tracing Keras layers
into a TensorFlow graph needs that backend, so a JAX-engine run writes it
in a child process (`python -m MODULE SOURCE OUT` with
KERAS_BACKEND=tensorflow). The SavedModel's folder is written whole
(`folders`)."""

import os
import subprocess
import sys

from trainers.bert.finetune.export import folders


def write(path, source, module, write_here):
    """`write_here(folder, source)` into a new folder put at `path`: in this
    process when Keras runs on TensorFlow, else by `python -m module source
    folder` (whose main calls the same); returns `path`."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return folders.write_whole(path, lambda folder: write_here(folder, source))
    return folders.write_whole(path, lambda folder: _in_child(folder, source, module))


def _in_child(path, source, module):
    import trainers

    root = os.path.dirname(os.path.dirname(os.path.abspath(trainers.__file__)))
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
    }
    command = [sys.executable, "-m", module, source, path]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(
            f"writing the SavedModel {path} under Keras' tensorflow backend failed "
            f"(exit status {done.returncode}): {lines[-1] if lines else 'no message'}"
        )
