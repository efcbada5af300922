"""`train(...)`: the BERT pretraining job, read top to bottom.

1. Check every setting and every phase's data before any compute.
2. Build the run's state on the engine (`engines`: tf.distribute or JAX).
3. Check that `model_dir` holds no other run (`identity`); only then write
   the run's files, and resume from the newest checkpoint, if any, else
   start from `init_checkpoint`'s weights, if given (`warm_start`).
4. Run the phases one after the other (`loop.Loop`): the learning rate warms
   up again at each phase start; optimizer moments carry over unless a phase
   resets them.
5. Export the encoder (a keras-hub preset) and the whole model
   (google-research/bert's format).
"""

import contextlib
import functools
import os
import tempfile

import gin
import keras
import tensorflow as tf

import lamb_tf
from trainers.bert import engines, settings
from trainers.bert.data import records
from trainers.bert.data.input import inputs
from trainers.bert.data.input.remask import Remasker
from trainers.bert.data.patterns import match_files
from trainers.bert.data.records import file_sha256
from trainers.bert.data.shards import builtin, corpus
from trainers.bert.data.shards.vocab import Vocabulary
from trainers.bert.errors import ConfigError
from trainers.bert.formats import google_checkpoint, warm_start
from trainers.bert.formats.export import export_encoder
from trainers.bert.model import bert as model_lib
from trainers.bert.run import identity, run_dir
from trainers.bert.run import phases as phases_lib
from trainers.bert.run.loop import Loop, LoopSettings
from trainers.bert.run.preemption import PreemptionWatcher
from trainers.bert.run.progress import Progress
from trainers.bert.run.recovery import Recovery

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
GOOGLE_CHECKPOINT = "google_checkpoint"
# The public BERT/LAMB recipe: no weight decay on LayerNorm and biases.
DEFAULT_OPTIMIZER = functools.partial(
    lamb_tf.LAMB, weight_decay=0.01, exclude_from_weight_decay=["layer_norm", "bias"]
)


@gin.configurable(denylist=["model_dir", "strategy", "engine", "flags_text"])
def train(
    model_dir,
    phases=gin.REQUIRED,
    strategy=None,
    engine=None,
    flags_text=None,
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
    init_checkpoint=None,
    export=True,
    tensorboard=True,
    gradient_noise_scale=True,
):
    """Pretrains BERT through `phases`; returns a summary dict.

    Args:
        model_dir: checkpoints, logs, the operative gin config and the
            exported encoder go here; a run restarted on the same
            `model_dir` resumes from its newest checkpoint.
        phases: a list of `trainers.bert.run.phases.Phase`.
        strategy: a `tf.distribute.Strategy` (default: the default one).
        engine: "tf" (tf.distribute) or "jax" (every JAX device); None:
            the engine of Keras' backend (`engines`).
        flags_text: the command line's flags, kept as `flags.txt`.
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
        init_checkpoint: start from these weights (`warm_start`): a
            keras-hub BERT preset folder or a google-research/bert
            checkpoint (`bert_model.ckpt` with `bert_config.json` and
            `vocab.txt` beside it). Only a run without a checkpoint of its
            own starts from it (a restart resumes); optimizer state and
            step start fresh.
        export: write the final encoder as a keras-hub preset (`encoder/`)
            and the model in google-research/bert's format
            (`google_checkpoint/`: bert_model.ckpt, bert_config.json,
            vocab.txt).
        tensorboard: write TensorBoard summaries.
        gradient_noise_scale: when an update is made of several
            micro-batches or replicas, estimate the gradient noise scale
            B_simple (`noise_scale`) from their gradient norms and report it
            with each host loop (one more pass over the gradients per
            micro-batch).
    """
    # 1. Everything that can be wrong is checked before any compute.
    engine_name = engine or engines.of_backend()
    engines.check(engine_name, strategy)
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision={precision!r}: choose one of {PRECISIONS}")
    engines.check_precision(engine_name, precision)
    clip_norm = settings.number("train.clip_norm", clip_norm, above=0.0, optional=True)
    keep_checkpoints = settings.integer("train.keep_checkpoints", keep_checkpoints)
    seed = settings.integer("train.seed", seed, minimum=0)
    peak_flops = settings.number("train.peak_flops", peak_flops, above=0.0, optional=True)
    input_pipelines = settings.integer("train.input_pipelines", input_pipelines, optional=True)
    run_dir.check_optimizer("train.optimizer", optimizer)
    for name, value in (
        ("jit_compile", jit_compile),
        ("dynamic_masking", dynamic_masking),
        ("export", export),
        ("tensorboard", tensorboard),
        ("gradient_noise_scale", gradient_noise_scale),
    ):
        settings.boolean(f"train.{name}", value)
    loop_settings = LoopSettings(
        steps_per_loop, checkpoint_every, eval_every, eval_steps, target_mlm_accuracy
    )
    recovery = Recovery(max_non_finite_steps, loss_spike_factor)
    phases_lib.check(phases)
    # A new run's warm start is read and checked before anything is written.
    warm = None
    if init_checkpoint and identity.read(model_dir) is None:
        warm = _read_warm_start(init_checkpoint, model, model_overrides, phases, vocab_file)
    run_dir.check_writable(model_dir)
    # The model's shape and the phases' batches on these devices, before
    # built-in data is made; then the vocabulary's size.
    config = model_lib.bert_config(model, model_overrides)
    where, replicas = engines.placement(engine_name, strategy)
    plans = phases_lib.plan(phases, replicas, config.max_sequence_length)
    data_dir, vocab_file = _data_source(phases, model_dir, data_dir, vocab_file)
    if dynamic_masking and not vocab_file:
        raise ConfigError("train.dynamic_masking needs train.vocab_file")
    config = model_lib.bert_config(model, model_overrides, vocab_file)
    files = [inputs.phase_files(plan.phase, data_dir, vocab_file) for plan in plans]
    vocabulary = Vocabulary(vocab_file) if dynamic_masking else None

    # 2. The run's state.
    keras.utils.set_random_seed(seed)
    schedule = phases_lib.schedule(plans)
    engine = engines.make(
        engine_name,
        where,
        plans,
        input_pipelines,
        config=config,
        optimizer=optimizer,
        schedule=schedule,
        precision=precision,
        model_dir=model_dir,
        keep_checkpoints=keep_checkpoints,
        clip_norm=clip_norm,
        jit_compile=jit_compile,
        noise_scale=gradient_noise_scale,
    )
    run_dir.check_disk(model_dir, engine.checkpoint_bytes())

    # 3. The run in model_dir: the same one, or stop before writing anything.
    latest = engine.latest()
    vocab_sha256 = file_sha256(vocab_file) if vocab_file else None
    run = identity.describe(config, vocab_sha256, plans, precision, engine.optimizer, engine_name)
    saved = identity.read(model_dir)
    if latest is not None and saved is None:
        _check_restorable(engine, latest, model_dir)  # a run saved before run.json
    identity.check(model_dir, saved, run, latest)
    if latest is not None:
        warm = None  # the run resumes
    elif init_checkpoint and warm is None:  # a run stopped before its first checkpoint
        warm = _read_warm_start(init_checkpoint, model, model_overrides, phases, vocab_file)
    if engine.is_chief:
        identity.write(model_dir, run)
        run_dir.write_text(model_dir, "operative_config.gin", gin.operative_config_str())
        if flags_text is not None:
            run_dir.write_text(model_dir, "flags.txt", flags_text)
    progress = Progress(model_dir, len(plans), tensorboard=tensorboard, write=engine.is_chief)
    progress.message(
        f"BERT {config.num_layers} layers x {config.hidden_dim}, "
        f"{engine.model.count_params():,} parameters, vocabulary {config.vocabulary_size}, "
        f"{type(engine.optimizer).__name__}, {precision}, {engine.description}, "
        f"model_dir {model_dir}"
    )
    if engine.xla_off:
        progress.message(
            "TensorFlow's TPU build cannot XLA-compile for the CPU: the steps run without "
            "XLA here (train.jit_compile)"
        )
    removed = engine.remove_partial_saves()
    if removed:
        progress.message(f"removed the partial files of a failed save: {', '.join(removed)}")
    if peak_flops is None and engine.platform != "tpu":
        peak_flops = engine.measure_peak_flops("float32" if precision == "float32" else "bfloat16")
        progress.message(f"measured matmul peak: {peak_flops / 1e9:.0f} GFLOP/s")

    if warm:
        engine.assign_weights(warm.values)
        progress.message(
            f"warm start from {warm.source}: {len(warm.values)} of "
            f"{len(engine.model.weights)} variables loaded; initialised at random: "
            f"{', '.join(warm.at_random) or 'none'}"
        )
        for note in warm.notes:
            progress.message(f"warm start: {note}")
    elif init_checkpoint:
        progress.message(f"train.init_checkpoint left aside: the run resumes from {latest.path}")
    if latest and latest.step >= plans[-1].last_step:
        engine.restore(latest)  # the trained weights, for the summary and the export
        progress.message(f"the run finished at step {latest.step} ({latest.path}): no steps left")
    elif latest:
        progress.message(
            f"resuming from {latest.path} (phase {latest.phase + 1}, step {latest.step})"
        )

    # 4. The phases.
    summary = {"stopped_early": False, "preempted": False, "eval": None, "train": None}
    with contextlib.closing(progress), PreemptionWatcher() as preemption:
        loop = Loop(
            engine,
            loop_settings,
            recovery,
            progress,
            schedule=schedule,
            config=config,
            plans=plans,
            peak_flops=peak_flops,
            preemption=preemption,
            saved_step=latest.step if latest else None,
        )
        for plan, phase_files in zip(plans, files):
            if latest is not None and latest.step >= plan.last_step:
                continue  # done before the restart
            remasker = vocabulary and Remasker(
                vocabulary, max_predictions=plan.phase.max_predictions
            )
            engine.start_phase(plan, phase_files, seed, remasker, resume=latest)
            latest = None
            summary.update(loop.run_phase(plan, phase_files))
            if summary["stopped_early"] or summary["preempted"]:
                break

        # 5. The encoder.
        if export and engine.is_chief and not summary["preempted"]:
            summary["encoder"] = export_encoder(
                model_dir, engine.model.get_layer("bert_backbone"), vocab_file
            )
            progress.message(f"encoder exported to {summary['encoder']}")
            summary["google_checkpoint"] = google_checkpoint.write(
                engine.model, config, vocab_file, os.path.join(model_dir, GOOGLE_CHECKPOINT)
            )
            progress.message(
                f"model exported in google-research/bert's format to {summary['google_checkpoint']}"
            )
    summary.update(
        step=engine.step,
        model=engine.model,
        optimizer=engine.optimizer,
        exit_status=preemption.exit_status,
    )
    return summary


def _read_warm_start(init_checkpoint, model, model_overrides, phases, vocab_file):
    """`warm_start.read` against the data the phases name, without making
    built-in data or copying a vocabulary into the run's folders."""
    if any(p.train_files == corpus.BUILTIN for p in phases):
        vocab_file, do_lower_case = builtin.KEPT_VOCAB, builtin.DO_LOWER_CASE
    else:
        if vocab_file and "://" in vocab_file:
            vocab_file = _local_copy(vocab_file)
        manifest = records.read_manifest(os.path.dirname(match_files(phases[0].train_files)[0]))
        do_lower_case = None if manifest is None else manifest.get("do_lower_case")
    config = model_lib.bert_config(model, model_overrides, vocab_file)
    return warm_start.read(init_checkpoint, config, vocab_file, do_lower_case)


def _data_source(phases, model_dir, data_dir, vocab_file):
    """(data_dir, vocab_file): built-in data brings its own vocabulary, made
    in `data_dir` (default model_dir/data); a remote vocabulary is copied
    to a local file (the tokenizers read local files)."""
    if any(p.train_files == corpus.BUILTIN for p in phases):
        if data_dir is None and "://" in model_dir:
            raise ConfigError(
                f"built-in data is made on a local disk: with model_dir {model_dir!r} "
                "set train.data_dir to a local folder"
            )
        data_dir = data_dir or os.path.join(model_dir, "data")
        return data_dir, builtin.vocab_file(data_dir)
    if vocab_file and "://" in vocab_file:
        return data_dir, _local_copy(vocab_file)
    return data_dir, vocab_file


def _local_copy(path):
    local = os.path.join(tempfile.mkdtemp(prefix="vocab-"), os.path.basename(path))
    try:
        tf.io.gfile.copy(path, local)
    except tf.errors.OpError as error:
        raise ConfigError(f"train.vocab_file {path!r}: {error.message}") from None
    return local


def _check_restorable(engine, checkpoint, model_dir):
    """A run without run.json (saved by an earlier version) is checked by
    restoring its checkpoint into this configuration's state."""
    try:
        engine.restore(checkpoint)
    except (ValueError, AssertionError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(
            f"model_dir {model_dir!r} holds a run with another configuration: its "
            f"checkpoint {checkpoint.path} does not fit this model and optimizer "
            f"({first_line}). Nothing was written. To resume that run, use its settings "
            "(its operative_config.gin); to start another, give a new model_dir"
        ) from None
