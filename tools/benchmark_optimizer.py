"""Time one optimizer step on the variable shapes of BERT-base and BERT-large.

    python tools/benchmark_optimizer.py                      # BERT-base, all optimizers
    python tools/benchmark_optimizer.py --models=bert_base,bert_large --json_out=bench.json

For each optimizer (lamb_tf.LAMB, lamb_tf.LARS, keras.optimizers.Lamb,
keras.optimizers.AdamW) with and without XLA around the step, in one process:
median step time over `--repeats` steps after `--warmup` steps, parameters/s,
bytes moved/s (by the minimum traffic of each algorithm), the fraction of the
machine's memory bandwidth (measured in the same run by a fused read-write pass
over the same bytes), and ratios to AdamW and to Keras' Lamb in the same mode.
With `--memory`, each optimizer also runs in a fresh subprocess that reports the
step's peak memory beyond the variables, gradients and slots.
"""

import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import lamb_tf  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["bert_base"], "Shape sets: bert_base, bert_large, tiny.")
flags.DEFINE_list(
    "optimizers",
    ["lamb_tf.LAMB", "lamb_tf.LARS", "keras.Lamb", "keras.AdamW"],
    "Optimizers to time.",
)
flags.DEFINE_integer("warmup", 2, "Untimed steps first (compilation).")
flags.DEFINE_integer("repeats", 5, "Timed steps; the median is reported.")
flags.DEFINE_string("json_out", None, "Also write the results here as JSON.")
flags.DEFINE_bool("memory", False, "Measure each step's peak memory in a subprocess.")
flags.DEFINE_string("memory_child", None, "Internal: 'model:optimizer:xla' to measure.")

# 4-byte words each algorithm must read or write per parameter at the least:
# AdamW reads x, g, m, v and writes x, m, v; LAMB needs both norms before it
# can write x, so it reads x, m, v again; LARS reads x, g, m, writes m, then
# reads x, m again to write x.
TRAFFIC = {"keras.AdamW": 7, "keras.Lamb": 10, "lamb_tf.LAMB": 10, "lamb_tf.LARS": 7}


def bert_shapes(vocab=30522, hidden=768, layers=12, intermediate=3072, positions=512):
    """The trainable variables of BERT pretraining (encoder, pooler, MLM and
    NSP heads), in the google-research/bert layout."""
    shapes = [(vocab, hidden), (positions, hidden), (2, hidden), (hidden,), (hidden,)]
    for _ in range(layers):
        shapes += [(hidden, hidden), (hidden,)] * 4  # query, key, value, output
        shapes += [(hidden,), (hidden,)]  # attention LayerNorm
        shapes += [(hidden, intermediate), (intermediate,), (intermediate, hidden), (hidden,)]
        shapes += [(hidden,), (hidden,)]  # output LayerNorm
    shapes += [(hidden, hidden), (hidden,)]  # pooler
    shapes += [(hidden, hidden), (hidden,), (hidden,), (hidden,), (vocab,)]  # MLM head
    shapes += [(hidden, 2), (2,)]  # next-sentence head
    return shapes


MODELS = {
    "tiny": bert_shapes(vocab=1000, hidden=64, layers=2, intermediate=128, positions=64),
    "bert_base": bert_shapes(),
    "bert_large": bert_shapes(hidden=1024, layers=24, intermediate=4096),
}


def make_optimizer(name):
    if name == "lamb_tf.LAMB":
        return lamb_tf.LAMB(1e-3, weight_decay=0.01, exclude_from_weight_decay=["bias"])
    if name == "lamb_tf.LARS":
        return lamb_tf.LARS(1.0, weight_decay=1e-4)
    if name == "keras.Lamb":
        return keras.optimizers.Lamb(1e-3, epsilon=1e-6)
    if name == "keras.AdamW":
        return keras.optimizers.AdamW(1e-3, weight_decay=0.01, epsilon=1e-6)
    raise app.UsageError(f"Unknown optimizer {name!r}; choose from {sorted(TRAFFIC)}")


def make_state(shapes, seed=0):
    rng = np.random.default_rng(seed)
    variables = [
        keras.Variable(rng.standard_normal(s, np.float32) * 0.02, name=f"w{i}")
        for i, s in enumerate(shapes)
    ]
    grads = [tf.constant(rng.standard_normal(s, np.float32) * 1e-3) for s in shapes]
    return variables, grads


def step_function(optimizer, variables, grads, xla):
    @tf.function(jit_compile=xla)
    def step():
        optimizer.apply(grads, variables)

    return step


def time_calls(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bandwidth(variables, warmup, repeats):
    """Bytes/s of a fused read-modify-write pass over every variable."""

    @tf.function(jit_compile=True)
    def touch():
        for v in variables:
            v.assign(v * 0.999)

    seconds = time_calls(touch, warmup, repeats)
    nbytes = 2 * 4 * sum(int(np.prod(v.shape)) for v in variables)
    return nbytes / seconds, seconds


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(spec):
    """Peak resident memory of the first step beyond what was resident before
    it (variables, gradients, slots): the step's temporaries, plus XLA
    compilation, which the AdamW row shows to be small. Linux only."""
    model, name, xla = spec.split(":")
    variables, grads = make_state(MODELS[model])
    optimizer = make_optimizer(name)
    optimizer.build(variables)  # slots exist and are resident before the step
    step = step_function(optimizer, variables, grads, xla == "1")
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
    before = _status_bytes("VmRSS")
    step()
    extra = _status_bytes("VmHWM") - before
    model_bytes = 4 * sum(int(np.prod(v.shape)) for v in variables)
    print(json.dumps({"extra_bytes": extra, "model_bytes": model_bytes}))


def measure_memory(model, name, xla):
    proc = subprocess.run(
        [sys.executable, __file__, f"--memory_child={model}:{name}:{int(xla)}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["extra_bytes"] / result["model_bytes"]


def benchmark(model):
    shapes = MODELS[model]
    params = sum(int(np.prod(s)) for s in shapes)
    print(f"\n## {model}: {params / 1e6:.1f}M parameters in {len(shapes)} variables\n")
    variables, grads = make_state(shapes)
    peak_bw, pass_seconds = bandwidth(variables, FLAGS.warmup, FLAGS.repeats)
    print(
        f"memory bandwidth (fused read+write pass): {peak_bw / 1e9:.1f} GB/s "
        f"({pass_seconds * 1e3:.1f} ms per pass)\n",
        flush=True,
    )
    rows = []
    for xla in (True, False):
        for name in FLAGS.optimizers:
            optimizer = make_optimizer(name)
            step = step_function(optimizer, variables, grads, xla)
            seconds = time_calls(step, FLAGS.warmup, FLAGS.repeats)
            moved = TRAFFIC[name] * 4 * params
            row = {
                "model": model,
                "optimizer": name,
                "xla": xla,
                "step_ms": seconds * 1e3,
                "params_per_s": params / seconds,
                "bytes_per_s": moved / seconds,
                "bandwidth_fraction": moved / seconds / peak_bw,
            }
            if FLAGS.memory:
                row["peak_extra_model_sizes"] = measure_memory(model, name, xla)
            rows.append(row)
            print(f"  {name:14s} xla={xla!s:5s} {seconds * 1e3:8.1f} ms", flush=True)
            del optimizer, step
            gc.collect()
    for row in rows:
        peers = {r["optimizer"]: r["step_ms"] for r in rows if r["xla"] == row["xla"]}
        row["vs_adamw"] = row["step_ms"] / peers["keras.AdamW"] if "keras.AdamW" in peers else None
        row["vs_keras_lamb"] = (
            row["step_ms"] / peers["keras.Lamb"] if "keras.Lamb" in peers else None
        )
    return {
        "model": model,
        "parameters": params,
        "variables": len(shapes),
        "bandwidth_bytes_per_s": peak_bw,
        "rows": rows,
    }


def markdown(result):
    lines = [
        "| optimizer | XLA step | ms | Mparams/s | GB/s moved | of bandwidth "
        "| x AdamW | x Keras Lamb |" + (" peak extra (model sizes) |" if FLAGS.memory else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if FLAGS.memory else ""),
    ]

    def ratio(x):
        return "-" if x is None else f"{x:.2f}"

    for r in result["rows"]:
        line = (
            f"| {r['optimizer']} | {'yes' if r['xla'] else 'no'} | {r['step_ms']:.1f} "
            f"| {r['params_per_s'] / 1e6:.0f} | {r['bytes_per_s'] / 1e9:.1f} "
            f"| {r['bandwidth_fraction']:.0%} | {ratio(r['vs_adamw'])} "
            f"| {ratio(r['vs_keras_lamb'])} |"
        )
        if FLAGS.memory:
            line += f" {ratio(r.get('peak_extra_model_sizes'))} |"
        lines.append(line)
    return "\n".join(lines)


def machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": [d.name for d in tf.config.list_logical_devices()],
    }


def main(argv):
    del argv
    if FLAGS.memory_child:
        memory_child(FLAGS.memory_child)
        return
    info = machine()
    print(
        f"# Optimizer step benchmark\n\n{info['platform']}, {info['cpu_count']} CPUs, "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}, float32, "
        f"median of {FLAGS.repeats} after {FLAGS.warmup} warm-up steps"
    )
    results = []
    for model in FLAGS.models:
        if model not in MODELS:
            raise app.UsageError(f"Unknown model {model!r}; choose from {sorted(MODELS)}")
        result = benchmark(model)
        print("\n" + markdown(result), flush=True)
        results.append(result)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)
        print(f"\nwrote {FLAGS.json_out}")


if __name__ == "__main__":
    app.run(main)
