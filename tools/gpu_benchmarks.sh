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
#   - tools/benchmark_jax_step.py: the JAX engine's train step in bf16 on
#     synthetic batches: pretraining phase 1 (sequence 128, 20 predictions)
#     on BERT-base and BERT-large, phase 2 (sequence 512, 80 predictions) on
#     BERT-large, and a SQuAD fine-tuning step (span head, sequence 384) on
#     BERT-base. It prints a table, one row per workload and model:
#     sequences/s in all and per device, MFU against the bf16 matmul peak
#     it measures, and for BERT-large phase 1 the ratio per device to
#     NVIDIA's 475 sequences/s per A100-80GB; every row in OUT/step.json;
#   - tools/benchmark_optimizer.py on Keras' JAX backend: one step of each
#     optimizer on BERT-base and BERT-large shapes (OUT/optimizer.json),
# and everything both print in OUT/benchmarks.log. Their figures are
# recorded in docs/results.md, naming the device and how many. WORKLOADS
# (default phase1,phase2,squad), MODELS (for every workload; default each
# one's own), MICRO_BATCH and ACCUMULATION (default each workload's), STEPS,
# WARMUP, OPTIMIZER_MODELS and REPEATS shrink it (a CPU check: MODELS=tiny
# OPTIMIZER_MODELS=tiny STEPS=1 WARMUP=1 MICRO_BATCH=2 REPEATS=2).
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
      "$PYTHON" tools/benchmark_jax_step.py --workloads="${WORKLOADS:-phase1,phase2,squad}" \
        ${MODELS:+--models="$MODELS"} ${MICRO_BATCH:+--micro_batch="$MICRO_BATCH"} \
        ${ACCUMULATION:+--accumulation="$ACCUMULATION"} --steps="${STEPS:-10}" \
        --warmup="${WARMUP:-2}" --json_out="$out/step.json"
      "$PYTHON" tools/benchmark_optimizer.py --models="${OPTIMIZER_MODELS:-bert_base,bert_large}" \
        --repeats="${REPEATS:-15}" --memory --json_out="$out/optimizer.json"
    } 2>&1 | tee "$out/benchmarks.log"
    ;;
  *)
    echo "usage: bash tools/gpu_benchmarks.sh wheels | run [OUT]" >&2
    exit 2
    ;;
esac
