#!/usr/bin/env bash
# The JAX benchmarks on a machine with JAX alone (a GPU or TPU machine
# without TensorFlow, nothing downloadable there):
#
#   bash tools/gpu_benchmarks.sh wheels       # here: the missing wheels into .whl/
#   bash tools/gpu_benchmarks.sh run [OUT]    # there: both benchmarks, figures in OUT
#
# `wheels` downloads, for Python 3.12 on x86-64 Linux, the packages a JAX
# machine lacks (Keras, keras-hub, gin-config and Keras' own needs), at the
# versions of constraints.txt. `run` installs whatever lies in .whl/ into a
# scratch folder (on Python 3.12), then records
#   - tools/benchmark_jax_step.py: the JAX engine's train step, bf16,
#     BERT-base and BERT-large phase 1 on synthetic batches (OUT/step.json);
#   - tools/benchmark_optimizer.py on Keras' JAX backend: one step of each
#     optimizer on BERT-base and BERT-large shapes (OUT/optimizer.json),
# their output in OUT/benchmarks.log. MODELS, OPTIMIZER_MODELS, STEPS,
# MICRO_BATCH, ACCUMULATION and REPEATS shrink it (a CPU check:
# MODELS=tiny OPTIMIZER_MODELS=tiny STEPS=2 MICRO_BATCH=8 REPEATS=2).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=(keras keras-hub gin-config namex optree)

case "${1:-}" in
  wheels)
    mkdir -p .whl
    for name in "${WHEELS[@]}"; do
      pin=$(grep -i "^${name}==" constraints.txt || true)
      "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${pin:-$name}"
    done
    ls .whl
    ;;
  run)
    out=${2:-${OUT:-benchmarks_out}}
    mkdir -p "$out"
    # The wheels are for Python 3.12 (the GPU machine's); elsewhere this
    # environment's own packages serve.
    if compgen -G ".whl/*.whl" > /dev/null \
        && "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
      "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/lamb_tf_site .whl/*.whl
      export PYTHONPATH=/tmp/lamb_tf_site:${PYTHONPATH:-}
    fi
    export PYTHONPATH=$PWD:${PYTHONPATH:-} KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    {
      "$PYTHON" tools/benchmark_jax_step.py --models="${MODELS:-base,large}" \
        --steps="${STEPS:-10}" --micro_batch="${MICRO_BATCH:-64}" \
        --accumulation="${ACCUMULATION:-4}" --json_out="$out/step.json"
      "$PYTHON" tools/benchmark_optimizer.py --models="${OPTIMIZER_MODELS:-bert_base,bert_large}" \
        --repeats="${REPEATS:-15}" --memory --json_out="$out/optimizer.json"
    } 2>&1 | tee "$out/benchmarks.log"
    ;;
  *)
    echo "usage: bash tools/gpu_benchmarks.sh wheels | run [OUT]" >&2
    exit 2
    ;;
esac
