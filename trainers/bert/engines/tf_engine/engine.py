"""`TFEngine`: what the host loop asks of a run under a tf.distribute
strategy. It holds the model, optimizer and counters as (distributed)
variables, places the input on the replicas, runs several steps per host call
(`steps.Steps`), and saves and restores it all (`checkpoints.Checkpointer`).

The loop (`trainers.bert.run.loop`) sees only this interface:
`step`, `train`, `evaluate`, `latest`, `save`, `restore`, `state_is_finite`,
`trust_ratios`; `train.train` also uses `start_phase`, `optimizer`,
`model`, `is_chief`, `platform`, `description`, `checkpoint_bytes`,
`remove_partial_saves` and, for a warm start, `assign_weights`; the
fine-tuning program also `predict`.
"""

import functools

import numpy as np
import tensorflow as tf

from lamb_tf import LayerwiseOptimizer, tf_dispatch
from trainers.bert.data.input import inputs
from trainers.bert.engines.contract import StepResult
from trainers.bert.engines.tf_engine import checkpoints, strategies
from trainers.bert.engines.tf_engine.loss_scale import DynamicLossScale, NoLossScale
from trainers.bert.engines.tf_engine.steps import Steps, split_among_replicas
from trainers.bert.errors import ConfigError
from trainers.bert.model import bert as model_lib
from trainers.bert.model import tasks
from trainers.bert.run import flops
from trainers.bert.run import noise_scale as noise_scale_lib
from trainers.bert.run.checkpoint import state_bytes


def input_pipelines(strategy, pipelines, plans):
    """The checked number of training input pipelines (None: one per
    worker). On TPU every host runs one pipeline, whatever is asked."""
    if strategies.is_tpu(strategy):
        return pipelines
    workers = strategy.num_replicas_in_sync // strategies.local_replicas(strategy)
    return inputs.check_input_pipelines(pipelines, workers, plans)


class TFEngine:
    """Args:
    strategy: a `tf.distribute.Strategy`.
    config: the `model.BertConfig`.
    optimizer: called as `optimizer(learning_rate=...)`.
    schedule: the learning rate over global steps.
    precision: "float32", "mixed_bfloat16" or "mixed_float16".
    model_dir: where checkpoints go.
    keep_checkpoints, clip_norm, jit_compile, input_pipelines: `train`'s.
    task: what the model computes (`tasks`; default pretraining).
    noise_scale: measure the gradient noise scale when an update is made
        of several micro-batches or replicas (`train.gradient_noise_scale`).
    """

    def __init__(
        self,
        strategy,
        config,
        optimizer,
        schedule,
        precision,
        model_dir,
        keep_checkpoints=3,
        clip_norm=None,
        jit_compile=True,
        input_pipelines=None,
        task=tasks.PRETRAINING,
        noise_scale=True,
    ):
        self.strategy = strategy
        self.task = task
        self._noise_scale = noise_scale
        self.noise_pieces = 1  # gradients per update measured: 1 is none
        # TensorFlow's TPU build cannot XLA-compile for the CPU.
        self.xla_off = jit_compile and not tf_dispatch.xla_compiles_under(strategy)
        self._clip_norm, self._jit_compile = clip_norm, jit_compile and not self.xla_off
        self._input_pipelines = input_pipelines
        self._tpu = strategies.is_tpu(strategy)
        if self._tpu and precision == "mixed_float16":
            # No float16 arithmetic on TPU cores; bfloat16 needs no loss scale.
            raise ConfigError(
                'train.precision="mixed_float16" cannot run on a TPU: use "mixed_bfloat16"'
            )
        self.platform = strategies.platform(strategy)  # "tpu", "gpu" or "cpu"
        self.description = f"{strategy.num_replicas_in_sync} replica(s) ({type(strategy).__name__})"
        with model_lib.dtype_policy(precision), strategy.scope():
            self.model = task.build(config)
            self._global_step = _counter("step")
            self._phase_index = _counter("phase")
            self.optimizer = optimizer(learning_rate=lambda: schedule(self._global_step))
            self.optimizer.build(self.model.trainable_variables)
            self._loss_scale = DynamicLossScale() if precision == "mixed_float16" else NoLossScale()
        extra = {}
        if isinstance(self._loss_scale, DynamicLossScale):
            extra["loss_scale"] = self._loss_scale
        self._checkpointer = checkpoints.Checkpointer(
            model_dir,
            self.model,
            self.optimizer,
            self._global_step,
            self._phase_index,
            extra,
            keep_checkpoints,
            strategy,
        )
        self.is_chief = self._checkpointer.is_chief  # writes logs and exports
        # Trust ratios to report: variables excluded from adaptation always
        # read 1. Fixed once the optimizer is built.
        self._adapted = None
        if isinstance(self.optimizer, LayerwiseOptimizer):
            self._adapted = [r["layer_adaptation"] for r in self.optimizer.variable_rules.values()]
        self._steps = self._iterator = self._files = None

    @property
    def step(self):
        """The global step: optimizer updates applied so far."""
        return int(self._global_step.numpy())

    def checkpoint_bytes(self):
        return state_bytes(self.model.weights + self.optimizer.variables)

    def measure_peak_flops(self, dtype):
        return flops.measure_peak_flops(dtype)

    # -------------------------------------------------------------- phases

    def start_phase(self, plan, files, seed, remasker=None, resume=None):
        """Readies `plan`'s phase: its input, and the state of `resume` (a
        `checkpoints.Checkpoint`) when the job restarts. A resume inside
        this phase continues the input where it stopped: from the saved
        iterator position, or on TPU, whose input cannot be saved, by
        skipping the batches already done."""
        mid_phase = resume is not None and resume.phase == plan.index
        skip = 0
        if mid_phase and self._tpu:  # a batch per replica for each step done
            skip = (resume.step - plan.first_step) * strategies.replicas_per_host(self.strategy)
        self._files = files
        self._iterator = self._input(
            plan, files.train, files.names, seed, True, remasker, skip, self._input_pipelines
        )
        self._checkpointer.positions.track(None if self._tpu else self._iterator)
        if resume is not None:
            self._checkpointer.restore(resume.path, with_iterator=mid_phase and not self._tpu)
        self._phase_index.assign(plan.index)
        pieces = noise_scale_lib.pieces(plan, self.strategy.num_replicas_in_sync)
        self.noise_pieces = pieces if self._noise_scale else 1
        if plan.phase.reset_optimizer and self.step == plan.first_step:
            # Fresh moments and iteration count (so bias correction restarts).
            for variable in self.optimizer.variables:
                variable.assign(tf.zeros(variable.shape, variable.dtype))
        self._steps = Steps(
            self.model,
            self.optimizer,
            self.strategy,
            self._global_step,
            plan.accumulation_steps,
            self._clip_norm,
            self._loss_scale,
            self._jit_compile,
            split_batch=not self._tpu,
            task=self.task,
            rate_factors=self.task.rate_factors(self.model),
            noise_scale=self.noise_pieces > 1,
        )

    def train(self, n):
        """`n` steps in one host call (`contract.StepResult`)."""
        with inputs.read_errors_named(self._files.train):
            sums, norm, skipped, trailing, noise = self._steps.train(
                self._iterator, tf.constant(n, tf.int64)
            )
        return StepResult(sums.numpy(), float(norm), int(skipped), int(trailing), noise.numpy())

    def evaluate(self, plan, files, n):
        """Metric sums over `n` held-out batches, read from their start."""
        iterator = self._input(plan, files.eval, files.names, 0, False, micro=True)
        with inputs.read_errors_named(files.eval):
            return self._steps.evaluate(iterator, tf.constant(n, tf.int64)).numpy()

    def predict(self, plan, files):
        """The task's `outputs` for every record of `files` (each with an
        `index` feature), as host arrays in index order. Every worker reads
        all records in global batches of `micro_batch` per replica (the last
        one padded, index -1) and runs its slice; the outputs are gathered
        from all replicas."""
        replicas = self.strategy.num_replicas_in_sync
        global_batch = plan.micro_batch * replicas
        parse = self.task.parser(plan.phase, None)
        if self._tpu:

            def per_pipeline(context):
                part = context.input_pipeline_id, context.num_input_pipelines
                mine = inputs.prediction_batches(files, parse, global_batch, *part).unbatch()
                return mine.batch(plan.micro_batch, drop_remainder=True)

            batches = self.strategy.distribute_datasets_from_function(per_pipeline)
            distribute = lambda batch: batch  # noqa: E731 (per replica already)
        else:
            local = strategies.local_replicas(self.strategy)
            resolver = getattr(self.strategy, "cluster_resolver", None)
            worker = resolver.task_id if replicas > local and resolver else 0
            batches = inputs.prediction_batches(
                files, parse, global_batch, worker, replicas // local
            )
            distribute = functools.partial(split_among_replicas, self.strategy)

        @functools.partial(tf.function, jit_compile=self._jit_compile)
        def forward(batch):
            outputs = self.model({n: batch[n] for n in self.task.inputs}, training=False)
            return {"index": batch["index"], **{n: outputs[n] for n in self.task.outputs}}

        def replica(batch):
            # A plain function calling the XLA one: traced on each replica's
            # device (strategy.run given the XLA function runs it on one).
            # Every replica's outputs reach every replica, tensor by tensor
            # (`strategy.gather` of a dict returned one replica's).
            context = tf.distribute.get_replica_context()
            return {n: context.all_gather(t, axis=0) for n, t in forward(batch).items()}

        @tf.function
        def run(batch):
            # Split inside the function: each slice on its replica's device.
            outputs = self.strategy.run(replica, args=(distribute(batch),))
            return {n: self.strategy.experimental_local_results(v)[0] for n, v in outputs.items()}

        gathered = [{n: v.numpy() for n, v in run(batch).items()} for batch in batches]
        return inputs.in_index_order(gathered)

    def trust_ratios(self):
        """The last step's trust ratios of the adapted variables, or None."""
        if self._adapted is None:
            return None
        return np.asarray(self.optimizer.trust_ratio_tensor)[self._adapted]

    # --------------------------------------------------------- checkpoints

    def assign_weights(self, values):
        """Model variables from {variable path: array} (a warm start)."""
        for variable in self.model.weights:
            if variable.path in values:
                variable.assign(values[variable.path])

    def latest(self):
        return self._checkpointer.latest()

    def save(self):
        return self._checkpointer.save()

    def remove_partial_saves(self):
        """What failed saves left behind is removed; returns its paths."""
        return self._checkpointer.remove_partial()

    def restore(self, checkpoint):
        """Weights, optimizer state and step of `checkpoint`; the input goes
        on from where it is (used to step over a bad stretch)."""
        self._checkpointer.restore(checkpoint.path, with_iterator=False)

    def state_is_finite(self):
        return self._checkpointer.state_is_finite()

    # --------------------------------------------------------------- input

    def _input(
        self, plan, files, names, seed, shuffle, remasker=None, skip=0, pipelines=None, micro=False
    ):
        """Off TPU: a plain (so checkpointable) `tf.data` iterator over this
        worker's share of the global batch, which the step splits among the
        local replicas. On TPU: a distributed iterator of per-replica
        batches."""
        batch = plan.micro_batch if micro else plan.per_replica_batch
        options = dict(
            seed=seed,
            shuffle=shuffle,
            remasker=remasker,
            skip_batches=skip,
            parse=self.task.parser(plan.phase, names),
        )
        strategy = self.strategy
        if self._tpu:
            return iter(
                strategy.distribute_datasets_from_function(
                    lambda context: inputs.dataset(plan, files, names, batch, context, **options)
                )
            )
        replicas = strategy.num_replicas_in_sync
        local = strategies.local_replicas(strategy)
        workers = replicas // local
        resolver = getattr(strategy, "cluster_resolver", None)
        worker = resolver.task_id if workers > 1 and resolver else 0
        dataset = inputs.worker_dataset(
            plan,
            files,
            names,
            batch * local,
            pipelines or workers,
            worker,
            workers,
            replicas,
            **options,
        )
        return iter(dataset)


def _counter(name):
    return tf.Variable(
        0,
        dtype=tf.int64,
        trainable=False,
        name=name,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )
