#!/usr/bin/env bash
# Installs lamb-tf with TensorFlow's TPU build into the active Python
# environment, with exactly one distribution providing `tensorflow`:
#
#     bash tools/install_tpu.sh            # on every host of a TPU VM or slice
#     bash tools/install_tpu.sh test       # with the test extras (CI)
#
# PYTHON names the interpreter (default: `python` on PATH).
#
# Why not plain pip: keras-hub requires tensorflow-text, which requires the
# `tensorflow` distribution; pip's resolver would install it over
# `tensorflow-tpu` (two distributions writing one package). Here the two are
# installed without their requirements, and those requirements, less
# `tensorflow`, are installed from constraints-tpu.txt.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
constraints="$root/constraints-tpu.txt"
extras="${1:-}"
python="${PYTHON:-python}"  # the environment's interpreter
pip=("$python" -m pip install -q -c "$constraints")

# A non-TPU TensorFlow goes first. Its files and tensorflow-tpu's are the
# same package, so removing it breaks an installed tensorflow-tpu, which is
# then installed again.
removed=""
for other in tensorflow tensorflow-cpu tensorflow-intel; do
    if "$python" -m pip show -q "$other" >/dev/null 2>&1; then
        echo "install_tpu: removing $other (a non-TPU TensorFlow)"
        "$python" -m pip uninstall -q -y "$other"
        removed=yes
    fi
done
# TensorFlow 2.20's TPU build and the libtpu that exports its TPU C API.
"${pip[@]}" tensorflow-tpu libtpu
if [[ -n "$removed" ]]; then
    "${pip[@]}" --force-reinstall --no-deps tensorflow-tpu
fi
# keras-hub and tensorflow-text without their requirements, then those.
"${pip[@]}" --no-deps keras-hub tensorflow-text
"${pip[@]}" keras absl-py numpy packaging regex rich kagglehub kagglesdk sentencepiece tokenizers
# lamb-tf with its `trainer` extra (gin-config, absl-py, tokenizers,
# tensorboard...), not `cpu` or `gpu`, which require the `tensorflow`
# distribution; lamb-tf itself requires Keras only (setup.py).
"${pip[@]}" -e "$root[trainer${extras:+,$extras}]"
# Exactly one TensorFlow, and tensorflow-text built for it, or exit 1.
"$python" -m trainers.stack
