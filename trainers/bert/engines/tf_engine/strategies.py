"""Choosing the tf.distribute strategy from the flags, with an error naming
the setting when the choice cannot work, before any compute."""

import json
import os

import tensorflow as tf

from trainers.bert.engines.tf_engine import tpu as tpu_lib
from trainers.bert.errors import ConfigError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu", "tpu_rehearsal")
REHEARSAL_REPLICAS = 2


class TPURehearsal(tf.distribute.MirroredStrategy):
    """A MirroredStrategy over this machine's logical CPUs on which the
    trainer takes every branch it takes on a TPU: per-replica input from
    `distribute_datasets_from_function`, one input pipeline per host, resume
    by skipping the batches already done (no input position in checkpoints),
    the TPU's precision rule. It checks a TPU configuration before a TPU is
    rented, and runs the TPU code paths in CPU tests."""


def make_strategy(strategy="auto", tpu=None):
    """`strategy`: one of STRATEGIES. "auto" picks TPUStrategy when `tpu`
    is given, MultiWorkerMirroredStrategy when TF_CONFIG names several
    workers, MirroredStrategy on several GPUs, one device on one GPU, and
    the default strategy otherwise (one CPU).

    `tpu`: a TPU name or address, or "local" on a TPU VM (and Colab).
    "tpu_rehearsal": `TPURehearsal`, the TPU branches on the CPU.
    A TPU asked for and not reached is an error: never a CPU fallback."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy={strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if tpu and strategy not in ("auto", "tpu"):
        raise ConfigError(f"--tpu={tpu!r} cannot run with --strategy={strategy}")
    if strategy == "tpu" and not tpu:
        raise ConfigError("--strategy=tpu needs --tpu (a TPU name, or 'local' on a TPU VM)")
    workers = _tf_config_workers()
    if strategy == "multi_worker" and workers == 0:
        raise ConfigError("--strategy=multi_worker needs TF_CONFIG with a 'cluster' of workers")
    # Physical devices only: listing logical ones starts the runtime, after
    # which collective ops (multi-worker) can no longer be configured.
    gpus = tf.config.list_physical_devices("GPU")
    if strategy == "auto":
        if tpu:
            strategy = "tpu"
        elif workers > 1:
            strategy = "multi_worker"
        elif len(gpus) > 1:
            strategy = "mirrored"
        elif len(gpus) == 1:
            strategy = "one_device"
        else:
            strategy = "default"

    if strategy == "tpu":
        return tpu_lib.strategy(tpu)
    if strategy == "tpu_rehearsal":
        return TPURehearsal(_rehearsal_devices())
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if strategy == "mirrored":
        # Every GPU, or every logical CPU where there is no GPU.
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if strategy == "one_device":
        return tf.distribute.OneDeviceStrategy((gpus or tf.config.list_logical_devices("CPU"))[0])
    return tf.distribute.get_strategy()


def _tf_config_workers():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _rehearsal_devices():
    """REHEARSAL_REPLICAS logical CPUs, made here unless the runtime has
    already started with its own."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if tf.config.get_logical_device_configuration(cpu) is None:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * REHEARSAL_REPLICAS
            )
        except RuntimeError:  # already started: its devices stand
            pass
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def is_tpu(strategy):
    """Whether the trainer takes its TPU branches: on a TPU, or rehearsing."""
    return isinstance(strategy, (tf.distribute.TPUStrategy, TPURehearsal))


def platform(strategy):
    """ "tpu", "gpu" or "cpu": where the replicas run."""
    if is_tpu(strategy):
        return "tpu"
    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def replicas_per_host(strategy):
    """Replicas one host's input pipeline feeds under
    `distribute_datasets_from_function`: each step takes one batch from it
    for each of them."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return strategy.extended.num_replicas_per_host
    return local_replicas(strategy)


def local_replicas(strategy):
    """Replicas on this worker (all of them, except with several workers)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return len(strategy.extended.worker_devices)
    return strategy.num_replicas_in_sync
