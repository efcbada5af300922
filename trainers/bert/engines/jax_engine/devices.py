"""The devices of a JAX run: the multi-host start, the mesh the batch is
split over, and the machine's matmul peak.

Data parallel: one mesh axis, "batch", over every device of every process;
the state is replicated on all of them, each batch split along its first
axis. Keras' `DataParallel` places variables and input the same way, but
has no hook for a step that accumulates micro-batches with one reduction
per update; the engine uses `jax.sharding` (a `Mesh`, `NamedSharding`s,
`shard_map`) directly.

On the CPU, XLA allocates each call's scratch memory afresh (about 1.5 GB
for a BERT-mini step of 64 x 128 tokens). From JAX's dispatch threads glibc
maps such a block anew each time and the kernel zeroes it page by page on
first touch: a sixth of the step's CPU time. So a CPU run dispatches on the
calling thread (`jax_cpu_enable_async_dispatch`, set before JAX's devices
start; it concerns only computations on one device) and has glibc serve
large blocks from its heap and keep them (`mallopt`), so the next step
reuses the same pages; its train step leaves dots to XLA's own emitter
rather than YNNPACK (`cpu_compiler_options`), a few per cent faster here;
and dropout's Threefry hash is compiled unrolled, as JAX compiles it off
the CPU (`unroll_threefry`): the same bits, some 15 times faster than its
CPU lowering (a loop of five passes over memory), a tenth of the step.
"""

import ctypes
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from trainers.bert.errors import ConfigError

BATCH = "batch"
AUTO = "auto"


def start(coordinator_address=None, num_processes=None, process_id=None):
    """Joins this process to a multi-process run (`jax.distributed`), before
    anything else touches JAX's devices. `coordinator_address`:
    "host:port" of process 0, or "auto" where JAX finds the cluster itself
    (Cloud TPU pods, SLURM); None: one process."""
    if coordinator_address is None:
        if num_processes not in (None, 1) or process_id not in (None, 0):
            raise ConfigError(
                f"--num_processes={num_processes} --process_id={process_id} need "
                "--coordinator_address (host:port of process 0, or 'auto' on a TPU pod)"
            )
        return
    if coordinator_address == AUTO:
        if num_processes is not None or process_id is not None:
            raise ConfigError(
                "--coordinator_address=auto finds --num_processes and --process_id itself: "
                "leave them unset"
            )
        kwargs = {}
    else:
        if num_processes is None or process_id is None:
            raise ConfigError(
                f"--coordinator_address={coordinator_address} needs --num_processes and "
                "--process_id"
            )
        if not 0 <= process_id < num_processes:
            raise ConfigError(
                f"--process_id={process_id} must be in [0, --num_processes={num_processes})"
            )
        kwargs = dict(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
        )
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(
            f"--coordinator_address={coordinator_address}: the processes did not start "
            f"together ({first_line or type(error).__name__})"
        ) from None


# glibc's mallopt parameters.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
# XLA:CPU's YNNPACK fusions: reductions only (its default also takes dots).
YNN_FUSIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}


class Devices:
    """Every device of the run on one "batch" axis. `compiler_options`:
    XLA options for the train step on these devices."""

    def __init__(self):
        dispatch_on_calling_thread()  # a no-op where JAX's devices started before
        self.mesh = Mesh(np.asarray(jax.devices()), (BATCH,))
        self.replicated = NamedSharding(self.mesh, P())
        self.split = NamedSharding(self.mesh, P(BATCH))
        self.count = jax.device_count()
        self.local_count = jax.local_device_count()
        self.process_index = jax.process_index()
        self.process_count = jax.process_count()
        self.platform = jax.devices()[0].platform  # "cpu", "gpu" or "tpu"
        self.compiler_options = {}
        if self.platform == "cpu":
            keep_freed_memory()
            unroll_threefry()
            self.compiler_options = cpu_compiler_options()

    def describe(self):
        return (
            f"{self.count} {self.platform.upper()} device(s) in {self.process_count} "
            "process(es) (JAX)"
        )

    def replicate(self, tree):
        """Host values (the same on every process) onto every device."""

        def put(value):
            value = np.asarray(value)
            return jax.make_array_from_callback(value.shape, self.replicated, lambda i: value[i])

        return jax.tree.map(put, tree)

    def batch(self, local):
        """This process's part of a global batch, split over the devices."""
        return {
            name: jax.make_array_from_process_local_data(self.split, np.asarray(value))
            for name, value in local.items()
        }


def dispatch_on_calling_thread():
    """Computations on one CPU device run on the thread that calls them
    (`jax_cpu_enable_async_dispatch` off). JAX reads the setting when its
    CPU client starts, at the first array or device query: so it is set as
    soon as Keras' backend is known to be JAX (`trainers.bert.engines`),
    before a setting's check makes an optimizer's variables."""
    jax.config.update("jax_cpu_enable_async_dispatch", False)


def keep_freed_memory():
    """glibc: blocks of any size from the heap, never returned to the
    system, so XLA's scratch memory is reused from call to call instead of
    being mapped and zeroed again. False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # -1: SIZE_MAX, never trim (a positive int caps it at 2 GiB, less than
    # the scratch memory of larger models).
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))


def unroll_threefry():
    """Computations traced from now on hash Threefry on the CPU with JAX's
    default, unrolled lowering (TPUs') instead of its CPU one, a rolled
    loop: the same bits. JAX's internals: False where they moved (the CPU
    lowering stays)."""
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32

        rule = threefry2x32._threefry2x32_lowering_rule
        mlir.register_lowering(threefry2x32.threefry2x32_p, rule, platform="cpu")
    except (ImportError, AttributeError):
        return False
    return True


def cpu_compiler_options():
    """`YNN_FUSIONS` where this jaxlib knows the option, else none."""
    try:
        jax.jit(jnp.negative).lower(jnp.zeros(2)).compile(compiler_options=YNN_FUSIONS)
    except Exception:  # an unknown option or value: the defaults
        return {}
    return dict(YNN_FUSIONS)


def measure_peak_flops(dtype="float32", size=None, seconds=1.0):
    """FLOP/s of a compiled square matmul on the first device, best of
    repeated runs for about `seconds`."""
    on_accelerator = jax.devices()[0].platform != "cpu"
    size = size or (8192 if on_accelerator else 1024)
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32).astype(dtype)
    matmul = jax.jit(jnp.matmul)
    matmul(a, a).block_until_ready()
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        begin = time.perf_counter()
        matmul(a, a).block_until_ready()
        best = min(best, time.perf_counter() - begin)
    return 2 * size**3 / best
