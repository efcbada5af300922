"""Time one optimizer step on the variable shapes of BERT-base and BERT-large.

    python tools/benchmark_optimizer.py                      # BERT-base, all optimizers
    python tools/benchmark_optimizer.py --models=bert_base,bert_large --json_out=bench.json
    KERAS_BACKEND=jax python tools/benchmark_optimizer.py    # on JAX, with optax's peers

For each optimizer (lamb_tf.LAMB, lamb_tf.LARS, keras.optimizers.Lamb,
keras.optimizers.AdamW) with and without XLA around the step, in one process:
step time, parameters/s, bytes moved/s (by the minimum traffic of each
algorithm), the fraction of the machine's memory bandwidth (a fused read-write
pass over the same bytes) and ratios to AdamW and to Keras' Lamb in the same
mode. The steps and the bandwidth pass are timed in turn, round after round,
so that all see the same machine: on a shared machine the speed of memory
moves by tens of percent from one second to the next. A ratio is the median
over the rounds of the ratio within a round; times are medians.
With `--memory`, each optimizer also runs in a fresh subprocess that reports
the peak of the step's own allocations (TensorFlow's allocator statistics,
after a first step that compiles) beyond the variables, gradients and slots.

On Keras' JAX backend (TensorFlow not needed) every step is one jitted
`stateless_apply` (Keras' optimizers and lamb_tf's) or optax update
(`optax.lamb`, `optax.adamw`), its buffers donated, so "XLA step" is always
yes; `--memory` then reports the compiled step's temporaries (XLA's memory
analysis) beyond its arguments and results.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

from trainers import stack
from trainers.bert import cli

cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import lamb_tf  # noqa: E402

JAX = keras.backend.backend() == "jax"
if JAX:
    stack.require("optax", ["test"], "tools/benchmark_optimizer.py on JAX (its optax peers)")
    import jax
    import optax
else:
    import tensorflow as tf

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["bert_base"], "Shape sets: bert_base, bert_large, tiny.")
OPTIMIZERS = ["lamb_tf.LAMB", "lamb_tf.LARS", "keras.Lamb", "keras.AdamW"]
flags.DEFINE_list(
    "optimizers",
    OPTIMIZERS + (["optax.lamb", "optax.adamw"] if JAX else []),
    "Optimizers to time.",
)
flags.DEFINE_integer("warmup", 2, "Untimed steps of each optimizer first (compilation).")
flags.DEFINE_integer("repeats", 15, "Timed rounds; each times every step once.")
flags.DEFINE_string("json_out", None, "Also write the results here as JSON.")
flags.DEFINE_bool("memory", False, "Measure each step's peak memory in a subprocess.")
flags.DEFINE_string("memory_child", None, "Internal: 'model:optimizer:xla' to measure.")

# 4-byte words each algorithm must read or write per parameter at the least:
# AdamW reads x, g, m, v and writes x, m, v; LAMB needs both norms before it
# can write x, so it reads x, m, v again; LARS reads x, g, m, writes m, then
# reads x, m again to write x. (XLA:CPU writes each output in its own pass:
# there AdamW moves 10, LAMB 13, LARS 9.)
TRAFFIC = {"keras.AdamW": 7, "keras.Lamb": 10, "lamb_tf.LAMB": 10, "lamb_tf.LARS": 7}
TRAFFIC.update({"optax.adamw": 7, "optax.lamb": 10})

# On JAX every optimizer keeps its own copy of the weights beside its slots
# (their buffers are donated to its step) and its step's temporaries, all
# held at once for the interleaved rounds: model sizes per optimizer, and
# those shared (Keras' variables, the gradients, the bandwidth pass's copy).
JAX_FOOTPRINT = {
    "lamb_tf.LAMB": 3.2,
    "lamb_tf.LARS": 2.2,
    "keras.Lamb": 4.0,
    "keras.AdamW": 3.0,
    "optax.lamb": 5.0,
    "optax.adamw": 3.0,
}
JAX_SHARED = 3.0


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
    grads = [rng.standard_normal(s, np.float32) * 1e-3 for s in shapes]
    if JAX:
        return variables, [jax.numpy.asarray(g) for g in grads]
    return variables, [tf.constant(g) for g in grads]


def step_function(optimizer, variables, grads, xla):
    @tf.function(jit_compile=xla)
    def step():
        optimizer.apply(grads, variables)

    return step


def jax_step_function(name, variables, grads):
    """One jitted update of copies of `variables`, buffers donated; the
    function's `temporary_bytes`: XLA's temporaries of the compiled step."""
    if name.startswith("optax."):
        make = {"optax.lamb": optax.lamb, "optax.adamw": optax.adamw}[name]
        transform = make(1e-3, eps=1e-6, weight_decay=0.01)

        def update(params, state, grads):
            updates, state = transform.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        params = [jax.numpy.array(v.value) for v in variables]
        held = [params, transform.init(params)]
    else:
        optimizer = make_optimizer(name)
        optimizer.build(variables)

        def update(params, state, grads):
            return optimizer.stateless_apply(state, grads, params)

        held = [
            [jax.numpy.array(v.value) for v in variables],
            [v.value for v in optimizer.variables],
        ]
    compiled = jax.jit(update, donate_argnums=(0, 1))
    analysis = compiled.lower(*held, grads).compile().memory_analysis()

    def step():
        held[:] = compiled(*held, grads)
        jax.block_until_ready(held[0])

    step.temporary_bytes = analysis.temp_size_in_bytes
    return step


def time_in_rounds(fns, warmup, rounds):
    """{name: [seconds per round]}: every function called once per round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for i in range(rounds):
        print(f"  round {i + 1}/{rounds}", flush=True)
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(times, peer_times):
    return statistics.median(t / p for t, p in zip(times, peer_times))


def bandwidth_pass(variables):
    """A fused read-modify-write pass over every variable: 8 bytes per parameter."""
    if JAX:
        touch = jax.jit(lambda values: [v * 0.999 for v in values], donate_argnums=0)
        held = [jax.numpy.array(v.value) for v in variables]

        def step():
            held[:] = touch(held)
            jax.block_until_ready(held)

        return step

    @tf.function(jit_compile=True)
    def touch():
        for v in variables:
            v.assign(v * 0.999)

    return touch


def memory_child(spec):
    """Prints the peak bytes a step allocates beyond what was allocated before
    it (variables, gradients, slots), from TensorFlow's allocator statistics.
    The first step compiles and is not measured: compilation memory is the
    compiler's, not the step's."""
    model, name, xla = spec.split(":")
    variables, grads = make_state(MODELS[model])
    optimizer = make_optimizer(name)
    optimizer.build(variables)  # slots are allocated before the steps
    step = step_function(optimizer, variables, grads, xla == "1")
    step()
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    step()
    extra = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
    print(json.dumps({"extra_bytes": extra, "model_bytes": model_bytes(variables)}))


def model_bytes(variables):
    """float32 bytes of variables (or of their shapes)."""
    return 4 * sum(int(np.prod(getattr(v, "shape", v))) for v in variables)


def measure_memory(model, name, xla):
    # The CPU allocator keeps statistics only in its BFC form, chosen at start-up.
    proc = subprocess.run(
        [sys.executable, __file__, f"--memory_child={model}:{name}:{int(xla)}"],
        env=dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true"),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"  memory of {name} xla={xla} not measured:\n{proc.stderr[-2000:]}", flush=True)
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["extra_bytes"] / result["model_bytes"]


def benchmark(model):
    shapes = MODELS[model]
    params = sum(int(np.prod(s)) for s in shapes)
    largest = max(int(np.prod(s)) for s in shapes) / params
    print(
        f"\n## {model}: {params / 1e6:.1f}M parameters in {len(shapes)} variables "
        f"(the largest is {largest:.2f} of the model)\n"
    )
    memory = {}
    if FLAGS.memory and not JAX:  # first, so that the subprocesses share the machine with nothing
        for xla in (True, False):
            for name in FLAGS.optimizers:
                print(f"measuring the memory of {name} xla={xla}...", flush=True)
                memory[name, xla] = measure_memory(model, name, xla)
    variables, grads = make_state(shapes)
    # One optimizer (one set of slots) per name serves both of its steps.
    optimizers = {name: None if JAX else make_optimizer(name) for name in FLAGS.optimizers}
    if JAX:
        steps = {(name, True): jax_step_function(name, variables, grads) for name in optimizers}
        for (name, _), step in steps.items():
            memory[name, True] = step.temporary_bytes / model_bytes(variables)
    else:
        steps = {
            (name, xla): step_function(optimizer, variables, grads, xla)
            for xla in (True, False)
            for name, optimizer in optimizers.items()
        }
    fns = {**steps, "bandwidth": bandwidth_pass(variables)}
    print(f"compiling {len(steps)} steps, then timing them in {FLAGS.repeats} rounds", flush=True)
    times = time_in_rounds(fns, FLAGS.warmup, FLAGS.repeats)
    pass_seconds = statistics.median(times["bandwidth"])
    peak_bw = 2 * 4 * params / pass_seconds
    print(
        f"memory bandwidth (fused read+write pass): {peak_bw / 1e9:.1f} GB/s "
        f"({pass_seconds * 1e3:.1f} ms per pass)",
        flush=True,
    )
    rows = []
    for name, xla in steps:
        step_times = times[name, xla]
        seconds = statistics.median(step_times)
        moved = TRAFFIC[name] * 4 * params
        row = {
            "model": model,
            "optimizer": name,
            "xla": xla,
            "step_ms": seconds * 1e3,
            "params_per_s": params / seconds,
            "bytes_per_s": moved / seconds,
            "bandwidth_fraction": median_ratio(times["bandwidth"], step_times) * TRAFFIC[name] / 2,
        }
        for peer, key in (("keras.AdamW", "vs_adamw"), ("keras.Lamb", "vs_keras_lamb")):
            peer_times = times.get((peer, xla))
            row[key] = None if peer_times is None else median_ratio(step_times, peer_times)
        if FLAGS.memory:
            row["peak_extra_model_sizes"] = memory[name, xla]
        rows.append(row)
    return {
        "model": model,
        "parameters": params,
        "variables": len(shapes),
        "largest_variable_model_sizes": largest,
        "bandwidth_bytes_per_s": peak_bw,
        "rounds": FLAGS.repeats,
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


def check_host_memory(model):
    """On JAX's CPU backend: refuses, before allocating, a run that would not
    fit in the memory available (the kernel would kill it mid-way, or the
    rounds would time page reclaim)."""
    if not JAX or jax.devices()[0].platform != "cpu":
        return
    available = _available_bytes()
    if available is None:
        return
    size = model_bytes(MODELS[model])
    needed = size * (JAX_SHARED + sum(JAX_FOOTPRINT.get(n, 4.0) for n in FLAGS.optimizers))
    if needed > 0.9 * available:
        raise app.UsageError(
            f"--models={model} with {len(FLAGS.optimizers)} optimizers needs about "
            f"{needed / 1e9:.1f} GB on JAX's CPU backend (each optimizer holds its own "
            f"weights and slots for the interleaved rounds) and {available / 1e9:.1f} GB "
            "is available: pass fewer --optimizers (e.g. "
            "--optimizers=lamb_tf.LAMB,keras.AdamW,keras.Lamb) and run the rest apart"
        )


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def machine():
    found = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "keras": keras.__version__,
    }
    if JAX:
        device = jax.devices()[0]
        found.update(
            backend=f"JAX {jax.__version__}, optax {optax.__version__}",
            devices=[getattr(device, "device_kind", device.platform)],
        )
    else:
        found.update(
            backend=f"TensorFlow {tf.__version__}",
            devices=[d.name for d in tf.config.list_logical_devices()],
        )
    return found


def main(argv):
    del argv
    if FLAGS.memory_child:
        memory_child(FLAGS.memory_child)
        return
    if not JAX:
        # Every step is a new tf.function traced once; TensorFlow calls that retracing.
        tf.get_logger().setLevel("ERROR")
    info = machine()
    print(
        f"# Optimizer step benchmark\n\n{info['platform']}, {info['cpu_count']} CPUs, "
        f"{info['devices'][0]}, {info['backend']}, Keras {info['keras']}, float32, "
        f"{FLAGS.repeats} rounds after {FLAGS.warmup} warm-up steps"
    )
    for model in FLAGS.models:
        if model not in MODELS:
            raise app.UsageError(f"Unknown model {model!r}; choose from {sorted(MODELS)}")
        check_host_memory(model)
    results = []
    for model in FLAGS.models:
        result = benchmark(model)
        print("\n" + markdown(result), flush=True)
        results.append(result)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)
        print(f"\nwrote {FLAGS.json_out}")


if __name__ == "__main__":
    cli.run(main)
