"""`train(...)`: the BERT pretraining job.

Checks the whole configuration and the data of every phase before any
compute, builds the model and optimizer under the strategy, resumes from the
newest checkpoint, runs the phases one after the other (the learning rate
warms up again at each phase start; optimizer moments carry over unless a
phase resets them), evaluates, checkpoints, and exports the encoder.
"""

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
import time

import gin
import keras
import numpy as np
import tensorflow as tf

import lamb_tf
from lamb_tf.layerwise import LayerwiseOptimizer
from trainers.bert import builtin_data, checkpoints, corpus, data, distribution, flops
from trainers.bert import model as model_lib
from trainers.bert import phases as phases_lib
from trainers.bert import step as step_lib
from trainers.bert.loss_scale import DynamicLossScale, NoLossScale
from trainers.bert.phases import ConfigError
from trainers.bert.preemption import EXIT_STATUS, PreemptionWatcher
from trainers.bert.progress import Progress
from trainers.bert.remask import Remasker
from trainers.bert.spikes import LossSpikes
from trainers.bert.vocab import Vocabulary

# Optimizers a gin file may name: `train.optimizer = @lamb_tf.LAMB`, with
# their constructor arguments as keys (`lamb_tf.LAMB.weight_decay = 0.01`).
for _optimizer, _module in (
    (lamb_tf.LAMB, "lamb_tf"),
    (lamb_tf.LARS, "lamb_tf"),
    (keras.optimizers.AdamW, "keras.optimizers"),
    (keras.optimizers.Lamb, "keras.optimizers"),
):
    gin.external_configurable(_optimizer, module=_module)

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# The public BERT/LAMB recipe: no weight decay on LayerNorm and biases.
DEFAULT_OPTIMIZER = functools.partial(
    lamb_tf.LAMB, weight_decay=0.01, exclude_from_weight_decay=["layer_norm", "bias"]
)


class TrainingError(RuntimeError):
    """Training cannot go on; the message names phase and step."""


@gin.configurable(denylist=["model_dir", "strategy"])
def train(
    model_dir,
    phases=gin.REQUIRED,
    strategy=None,
    model="tiny",
    model_overrides=None,
    optimizer=DEFAULT_OPTIMIZER,
    clip_norm=1.0,
    precision="float32",
    jit_compile=True,
    steps_per_loop=10,
    checkpoint_every=100,
    keep_checkpoints=3,
    eval_every=None,
    eval_steps=10,
    target_mlm_accuracy=None,
    vocab_file=None,
    data_dir=None,
    seed=0,
    dynamic_masking=False,
    input_pipelines=None,
    max_non_finite_steps=10,
    loss_spike_factor=None,
    peak_flops=None,
    export=True,
    tensorboard=True,
):
    """Pretrains BERT through `phases`; returns a summary dict.

    Args:
        model_dir: checkpoints, logs, the operative gin config and the
            exported encoder go here; a run restarted on the same
            `model_dir` resumes from its newest checkpoint.
        phases: a list of `trainers.bert.phases.Phase`.
        strategy: a `tf.distribute.Strategy` (default: the default one).
        model: a preset name from `model.PRESETS` or a `bert_config.json`.
        model_overrides: dict of `BertConfig` fields to change (e.g.
            `{"dropout": 0.0}`).
        optimizer: called as `optimizer(learning_rate=...)`; the rate is the
            phases' schedule over global steps.
        clip_norm: global gradient-norm clipping of the all-reduced
            gradients (the recipe's 1.0); None: off.
        precision: "float32", "mixed_bfloat16" (TPU, CPU) or
            "mixed_float16" (GPU; with dynamic loss scaling).
        jit_compile: XLA-compile the forward and backward passes.
        steps_per_loop: updates per host call (and per progress line).
        checkpoint_every: save every this many global steps (and at each
            phase end); None: at phase ends only.
        eval_every: evaluate every this many steps (and at each phase end)
            on the phase's `eval_files`; None: at phase ends only.
        eval_steps: batches per evaluation.
        target_mlm_accuracy: stop once an evaluation reaches it (MLPerf
            stops at 0.720).
        vocab_file: the vocabulary of the data (checked against its
            manifest, sets the model's vocabulary size, exported with the
            encoder). Built-in data brings its own.
        data_dir: where built-in data is made (default model_dir/data).
        seed: of the initial weights, dropout and input shuffling.
        dynamic_masking: draw new masked-LM targets for every training
            batch (RoBERTa-style; `remask.Remasker`) instead of the masks
            stored in the records; needs the vocabulary.
        input_pipelines: the training input is read by this many
            pipelines, each reading its own share of the files and giving
            an equal slice of every global batch; a worker runs
            `input_pipelines / workers` of them. The batches depend only on
            this number, not on how replicas are spread over workers (two
            workers of one device train exactly as one worker of two).
            None: one per worker. (On TPU each host runs one pipeline.)
        max_non_finite_steps: after this many skipped (non-finite) steps in
            a row, restore the weights, optimizer state and step of the
            newest checkpoint (the input goes on past the bad batches); if
            that happens again before a new checkpoint is written, stop
            with `TrainingError`.
        loss_spike_factor: off by default. When set (> 1), a host loop
            whose mean loss exceeds this factor times the mean of the loops
            before it is a loss spike, handled like the non-finite steps:
            restore the newest checkpoint, go on with the next batches, and
            stop if it happens again before a new checkpoint.
        peak_flops: the machine's peak FLOP/s for MFU; None: measured
            with a matmul on CPU/GPU, not shown on TPU.
        export: write the final encoder as a keras-hub preset.
        tensorboard: write TensorBoard summaries.
    """
    strategy = strategy or tf.distribute.get_strategy()
    _check_settings(
        precision, steps_per_loop, checkpoint_every, eval_every, eval_steps, max_non_finite_steps
    )
    if loss_spike_factor is not None and not loss_spike_factor > 1:
        raise ConfigError(
            f"train.loss_spike_factor must be > 1 (None: off), got {loss_spike_factor!r}"
        )
    _check_writable(model_dir)

    # Everything that can be wrong is checked before any compute.
    if any(p.train_files == corpus.BUILTIN for p in phases):
        if data_dir is None and "://" in model_dir:
            raise ConfigError(
                f"built-in data is made on a local disk: with model_dir {model_dir!r} "
                "set train.data_dir to a local folder"
            )
        data_dir = data_dir or os.path.join(model_dir, "data")
        vocab_file = builtin_data.vocab_file(data_dir)
    elif vocab_file and "://" in vocab_file:
        vocab_file = _local_copy(vocab_file)  # the tokenizers read local files
    config = _bert_config(model, model_overrides, vocab_file)
    plans = phases_lib.plan(phases, strategy.num_replicas_in_sync, config.max_sequence_length)
    inputs = [_phase_data(plan.phase, data_dir, vocab_file, eval_steps) for plan in plans]
    workers = strategy.num_replicas_in_sync // distribution.local_replicas(strategy)
    input_pipelines = _check_input_pipelines(input_pipelines, workers, plans, strategy)
    if dynamic_masking and not vocab_file:
        raise ConfigError("train.dynamic_masking needs train.vocab_file")
    vocabulary = Vocabulary(vocab_file) if dynamic_masking else None

    keras.utils.set_random_seed(seed)
    with _dtype_policy(precision), strategy.scope():
        net = model_lib.build_pretraining_model(config)
        step = _counter("step")
        phase_index = _counter("phase")
        schedule = phases_lib.schedule(plans)
        opt = optimizer(learning_rate=lambda: schedule(step))
        opt.build(net.trainable_variables)
        loss_scale = DynamicLossScale() if precision == "mixed_float16" else NoLossScale()
    _check_disk(model_dir, net, opt)
    extra = {"loss_scale": loss_scale} if isinstance(loss_scale, DynamicLossScale) else {}
    checkpointer = checkpoints.Checkpointer(
        model_dir, net, opt, step, phase_index, extra, keep_checkpoints, strategy
    )
    chief = checkpointer.is_chief  # the one worker that writes logs and exports
    if chief:
        with tf.io.gfile.GFile(os.path.join(model_dir, "operative_config.gin"), "w") as f:
            f.write(gin.operative_config_str())

    progress = Progress(model_dir, len(plans), tensorboard=tensorboard, write=chief)
    progress.message(
        f"BERT {config.num_layers} layers x {config.hidden_dim}, "
        f"{net.count_params():,} parameters, vocabulary {config.vocabulary_size}, "
        f"{type(opt).__name__}, {precision}, {strategy.num_replicas_in_sync} replica(s) "
        f"({type(strategy).__name__}), model_dir {model_dir}"
    )
    if peak_flops is None and not isinstance(strategy, tf.distribute.TPUStrategy):
        peak_flops = flops.measure_peak_flops("float32" if precision == "float32" else "bfloat16")
        progress.message(f"measured matmul peak: {peak_flops / 1e9:.0f} GFLOP/s")

    run = _Run(strategy, net, opt, step, schedule, config, progress, checkpointer, peak_flops)
    run.every = {"steps_per_loop": steps_per_loop, "checkpoint": checkpoint_every}
    run.every.update(eval=eval_every, eval_steps=eval_steps, target=target_mlm_accuracy)
    run.every["non_finite"] = max_non_finite_steps
    run.spikes = LossSpikes(loss_spike_factor) if loss_spike_factor else None
    latest = checkpointer.latest()
    if latest:
        progress.message(f"resuming from {latest[0]} (phase {latest[2] + 1}, step {latest[1]})")
        run.saved_step = latest[1]
    summary = {"stopped_early": False, "preempted": False, "eval": None, "train": None}
    with contextlib.closing(progress), PreemptionWatcher() as run.preemption:
        for plan, (train_files, eval_files, names) in zip(plans, inputs):
            if latest is not None and latest[1] >= plan.last_step:
                continue
            remasker = vocabulary and Remasker(
                vocabulary, max_predictions=plan.phase.max_predictions
            )
            mid_phase = latest is not None and latest[2] == plan.index
            # TPU input cannot be checkpointed: it skips the batches done.
            skip = latest[1] - plan.first_step if mid_phase and distribution.is_tpu(strategy) else 0
            iterator = _input(
                strategy, plan, train_files, names, seed, True, remasker, skip, input_pipelines
            )
            checkpointable = not distribution.is_tpu(strategy)
            checkpointer.track_iterator(iterator if checkpointable else None)
            if latest is not None:
                checkpointer.restore(latest[0], with_iterator=mid_phase and checkpointable)
                latest = None
            phase_index.assign(plan.index)
            if plan.phase.reset_optimizer and int(step.numpy()) == plan.first_step:
                _reset(opt)
            steps = step_lib.Steps(
                net,
                opt,
                strategy,
                step,
                plan.accumulation_steps,
                clip_norm,
                loss_scale,
                jit_compile,
                split_batch=not distribution.is_tpu(strategy),
            )
            summary.update(run.phase(plan, steps, iterator, eval_files, names))
            if summary["stopped_early"] or summary["preempted"]:
                break
        if export and chief and not summary["preempted"]:
            summary["encoder"] = checkpoints.export_encoder(
                model_dir, net.get_layer("bert_backbone"), vocab_file
            )
            progress.message(f"encoder exported to {summary['encoder']}")
    summary.update(step=int(step.numpy()), model=net, optimizer=opt)
    return summary


class _Run:
    """The state one job's phases share; `every` holds the loop settings."""

    def __init__(self, strategy, net, opt, step, schedule, config, progress, checkpointer, peak):
        self.strategy, self.net, self.opt, self.step = strategy, net, opt, step
        self.schedule, self.config, self.progress = schedule, config, progress
        self.checkpointer, self.peak_flops = checkpointer, peak
        self.every = {}
        self.preemption = None
        self.spikes = None  # a LossSpikes when the rollback is on
        self.non_finite_in_a_row = 0
        self.restored_from = None  # the checkpoint last restored after non-finite steps
        self.saved_step = None  # the step of the newest checkpoint
        # Which trust ratios to report: variables excluded from adaptation
        # always read 1. Fixed once the optimizer is built.
        self.adapted = None
        if isinstance(opt, LayerwiseOptimizer):
            self.adapted = [r["layer_adaptation"] for r in opt.variable_rules.values()]

    def phase(self, plan, steps, iterator, eval_files, names):
        """Runs `plan`'s phase from the current step to its end (or to the
        target accuracy); returns the last figures."""
        every = self.every
        current = int(self.step.numpy())
        self.progress.start_phase(plan, current)
        if self.spikes:
            self.spikes.reset()
        result = {"stopped_early": False, "preempted": False}
        while current < plan.last_step:
            n = min(
                every["steps_per_loop"],
                plan.last_step - current,
                _to_next(current, every["checkpoint"]),
                _to_next(current, every["eval"]),
            )
            result["train"] = figures = self._train(plan, steps, iterator, n)
            current = int(self.step.numpy())
            if self.spikes and figures["skipped"] < n:
                spike = self.spikes.check(figures["loss"])
                if spike:
                    self._restore_last_good(plan, current, spike)
                    current = int(self.step.numpy())
                    continue
            at_end = current >= plan.last_step
            # Skipped (non-finite) steps leave the step where it was: no
            # second checkpoint of the same step.
            saving = current != self.saved_step and (
                at_end or _due(current, every["checkpoint"]) or self.preemption.requested
            )
            finite = not saving or self.checkpointer.state_is_finite()
            if self.non_finite_in_a_row >= every["non_finite"] or not finite:
                cause = (
                    f"{self.non_finite_in_a_row} non-finite steps in a row"
                    if finite
                    else "non-finite weights or optimizer state"
                )
                self._restore_last_good(plan, current, cause)
                current = int(self.step.numpy())
                continue
            if saving:
                self._save()
            if self.preemption.requested:
                self.progress.message(
                    f"SIGTERM: stopped at phase {plan.index + 1}, step {current}, checkpointed; "
                    f"exiting with status {EXIT_STATUS}, a restart resumes here"
                )
                result["preempted"] = True
                break
            if eval_files and (at_end or _due(current, every["eval"])):
                result["eval"] = self.evaluate(plan, steps, eval_files, names)
                accuracy = result["eval"]["mlm_accuracy"]
                if every["target"] is not None and accuracy >= every["target"]:
                    self.progress.message(
                        f"target masked-LM accuracy {every['target']} reached "
                        f"({accuracy:.4f}) at step {current}: stopping"
                    )
                    if not at_end:
                        self._save()
                    result["stopped_early"] = True
                    break
        return result

    def _save(self):
        self.progress.message(f"checkpoint {self.checkpointer.save()}")
        self.saved_step = int(self.step.numpy())
        self.restored_from = None

    def _restore_last_good(self, plan, current, cause):
        where = f"phase {plan.index + 1}, step {current}"
        latest = self.checkpointer.latest()
        if latest is None:
            raise TrainingError(f"{where}: {cause} and no checkpoint to restore; stopping")
        if latest[0] == self.restored_from:
            raise TrainingError(
                f"{where}: {cause} again after restoring {latest[0]}; stopping (it is the "
                "newest good checkpoint)"
            )
        self.progress.message(f"{where}: {cause}; restoring {latest[0]}")
        # The input goes on after the bad batches rather than replaying
        # them: a bad stretch of data is stepped over, as PaLM did for loss
        # spikes. A transient fault passes either way.
        self.checkpointer.restore(latest[0], with_iterator=False)
        self.restored_from, self.saved_step = latest[0], latest[1]
        self.non_finite_in_a_row = 0  # the spike window keeps the losses before it

    def _train(self, plan, steps, iterator, n):
        phase = plan.phase
        start = time.perf_counter()
        sums, norm, skipped, trailing = steps.train(iterator, tf.constant(n, tf.int64))
        trailing = int(trailing)
        if trailing == n:
            self.non_finite_in_a_row += n
        else:
            self.non_finite_in_a_row = trailing
        figures = _figures(sums)
        seconds = time.perf_counter() - start
        current = int(self.step.numpy())
        sequences_per_second = n * phase.global_batch_size / seconds
        sequence_flops = flops.training_flops_per_sequence(
            self.config, phase.seq_length, phase.max_predictions
        )
        figures.update(
            learning_rate=float(self.schedule(current - 1)),
            gradient_norm=float(norm),
            sequences_per_second=sequences_per_second,
            tokens_per_second=sequences_per_second * phase.seq_length,
            mfu=sequence_flops * sequences_per_second / self.peak_flops
            if self.peak_flops
            else None,
            skipped=int(skipped),
        )
        trust_ratios = None
        if self.adapted is not None:
            trust_ratios = np.asarray(self.opt.trust_ratio_tensor)[self.adapted]
        self.progress.train(plan, current, figures, trust_ratios)
        return figures

    def evaluate(self, plan, steps, eval_files, names):
        eval_steps = tf.constant(self.every["eval_steps"], tf.int64)
        iterator = _input(self.strategy, plan, eval_files, names, 0, False, micro=True)
        figures = _figures(steps.evaluate(iterator, eval_steps))
        self.progress.evaluate(plan, int(self.step.numpy()), figures)
        return figures


def _figures(sums):
    return {k: float(v) for k, v in model_lib.losses_from_sums(sums).items()}


def _input(
    strategy, plan, files, names, seed, shuffle, remasker=None, skip=0, pipelines=None, micro=False
):
    """An iterator over the phase's batches. Off TPU: a plain (so
    checkpointable) `tf.data` iterator over this worker's share of the
    global batch, the concatenation of its input pipelines' slices, which
    the step splits among the local replicas. On TPU: a distributed
    iterator of per-replica batches."""
    phase = plan.phase
    batch = plan.micro_batch if micro else plan.per_replica_batch

    def dataset(context, batch_size):
        return data.make_dataset(
            files,
            phase.seq_length,
            phase.max_predictions,
            batch_size,
            names=names,
            input_context=context,
            shuffle=shuffle,
            seed=seed + plan.index,
            remasker=remasker,
            skip_batches=skip,
        )

    if distribution.is_tpu(strategy):
        return iter(strategy.distribute_datasets_from_function(lambda c: dataset(c, batch)))
    replicas = strategy.num_replicas_in_sync
    local = distribution.local_replicas(strategy)
    workers = replicas // local
    resolver = getattr(strategy, "cluster_resolver", None)
    worker = resolver.task_id if workers > 1 and resolver else 0
    pipelines = pipelines or workers
    mine = pipelines // workers
    slices = [
        dataset(
            tf.distribute.InputContext(pipelines, worker * mine + i, replicas),
            batch * local // mine,
        )
        for i in range(mine)
    ]
    if mine == 1:
        return iter(slices[0])
    joined = tf.data.Dataset.zip(tuple(slices)).map(
        lambda *parts: {key: tf.concat([p[key] for p in parts], 0) for key in parts[0]}
    )
    return iter(joined)


def _check_input_pipelines(pipelines, workers, plans, strategy):
    """The number of training input pipelines (None: one per worker)."""
    if pipelines is None or distribution.is_tpu(strategy):
        return pipelines
    if int(pipelines) != pipelines or pipelines < 1 or pipelines % workers:
        raise ConfigError(
            f"train.input_pipelines={pipelines!r} must be a positive multiple of the "
            f"{workers} worker(s)"
        )
    for plan in plans:
        if plan.phase.global_batch_size % pipelines:
            raise ConfigError(
                f"train.input_pipelines={pipelines}: phase {plan.index + 1}'s "
                f"global_batch_size {plan.phase.global_batch_size} does not split evenly "
                "among them"
            )
    return int(pipelines)


def _phase_data(phase, data_dir, vocab_file, eval_steps):
    """(training files, held-out files or None, feature names), checked."""
    train_pattern, eval_pattern = phase.train_files, phase.eval_files
    if train_pattern == corpus.BUILTIN:
        train_pattern, builtin_eval = builtin_data.shards(
            data_dir, phase.seq_length, phase.max_predictions
        )
        eval_pattern = eval_pattern or builtin_eval
    train_files = data.match_files(train_pattern)
    names = data.validate(train_files, phase.seq_length, phase.max_predictions, vocab_file)
    eval_files = None
    if eval_pattern:
        eval_files = data.match_files(eval_pattern)
        eval_names = data.validate(eval_files, phase.seq_length, phase.max_predictions, vocab_file)
        if eval_names != names:
            raise data.DataError(f"{eval_pattern}: other feature names than {train_pattern}")
    return train_files, eval_files, names


def _bert_config(model, overrides, vocab_file):
    if model in model_lib.PRESETS:
        config = model_lib.preset(model)
    elif os.path.exists(model):
        config = model_lib.read_bert_config(model)
    else:
        raise ConfigError(
            f"train.model={model!r} is neither a preset ({', '.join(model_lib.PRESETS)}) "
            "nor an existing bert_config.json"
        )
    overrides = dict(overrides or {})
    unknown = set(overrides) - {f.name for f in dataclasses.fields(config)}
    if unknown:
        raise ConfigError(f"train.model_overrides: unknown fields {sorted(unknown)}")
    if vocab_file:
        size = len(Vocabulary(vocab_file))
        given = overrides.get("vocabulary_size")
        if given is not None and given != size:
            raise ConfigError(
                f"train.model_overrides vocabulary_size={given} but {vocab_file} holds {size}"
            )
        if model not in model_lib.PRESETS and config.vocabulary_size != size:
            raise ConfigError(f"{model}: vocab_size {config.vocabulary_size}, {vocab_file}: {size}")
        overrides["vocabulary_size"] = size
    return dataclasses.replace(config, **overrides)


def _check_settings(
    precision, steps_per_loop, checkpoint_every, eval_every, eval_steps, max_non_finite_steps
):
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision={precision!r}: choose one of {PRECISIONS}")
    for name, value, optional in (
        ("steps_per_loop", steps_per_loop, False),
        ("max_non_finite_steps", max_non_finite_steps, False),
        ("checkpoint_every", checkpoint_every, True),
        ("eval_every", eval_every, True),
        ("eval_steps", eval_steps, False),
    ):
        if (value is None and not optional) or (
            value is not None and (int(value) != value or value < 1)
        ):
            raise ConfigError(f"train.{name} must be an integer >= 1, got {value!r}")


def _local_copy(path):
    local = os.path.join(tempfile.mkdtemp(prefix="vocab-"), os.path.basename(path))
    try:
        tf.io.gfile.copy(path, local)
    except tf.errors.OpError as error:
        raise ConfigError(f"train.vocab_file {path!r}: {error.message}") from None
    return local


def _check_writable(model_dir):
    try:
        tf.io.gfile.makedirs(model_dir)
        probe = os.path.join(model_dir, f".write_test_{os.getpid()}")  # one per worker
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        message = getattr(error, "strerror", None) or getattr(error, "message", str(error))
        raise ConfigError(f"model_dir {model_dir!r} is not writable: {message}") from None


def _check_disk(model_dir, model, optimizer):
    """Room for one more checkpoint (local folders; object stores skip)."""
    if "://" in model_dir:
        return
    needed = sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
        for v in model.weights + optimizer.variables
        if v.dtype != "bfloat16"
    )
    free = shutil.disk_usage(model_dir).free
    if free < needed:
        raise ConfigError(
            f"model_dir {model_dir!r}: {free / 1e6:.1f} MB free on its disk, one checkpoint "
            f"needs {needed / 1e6:.1f} MB"
        )


@contextlib.contextmanager
def _dtype_policy(precision):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _counter(name):
    return tf.Variable(
        0,
        dtype=tf.int64,
        trainable=False,
        name=name,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


def _reset(optimizer):
    """Fresh moments and iteration count (so bias correction restarts)."""
    for variable in optimizer.variables:
        variable.assign(tf.zeros(variable.shape, variable.dtype))


def _due(current, every):
    return bool(every) and current % every == 0


def _to_next(current, every):
    return every - current % every if every else float("inf")
