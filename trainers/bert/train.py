"""`train(...)`: the BERT pretraining job, read top to bottom; its
settings are `Pretraining` (gin's `train.*`). The steps it shares with
fine-tuning are `run.life`'s.

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

import dataclasses
import functools
import os
import tempfile
from typing import ClassVar

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
from trainers.bert.formats.export import ENCODER, export_encoder
from trainers.bert.model import bert as model_lib
from trainers.bert.run import identity, life, run_dir
from trainers.bert.run import phases as phases_lib
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

GOOGLE_CHECKPOINT = "google_checkpoint"
# The public BERT/LAMB recipe: no weight decay on LayerNorm and biases.
DEFAULT_OPTIMIZER = functools.partial(
    lamb_tf.LAMB, weight_decay=0.01, exclude_from_weight_decay=["layer_norm", "bias"]
)


@gin.configurable("train")
@dataclasses.dataclass
class Pretraining(life.RunSettings):
    """The pretraining job's settings, checked when made; gin binds them as
    `train.<name>` (`train.phases = [@phase1/Phase(), @phase2/Phase()]`).

    Args:
        phases: a list of `trainers.bert.run.phases.Phase`.
        model: a preset name from `model.bert.PRESETS` or a `bert_config.json`.
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
        keep_checkpoints: the newest this many are kept.
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

    NAME: ClassVar[str] = "train"
    BOOLEANS: ClassVar[tuple] = (
        "jit_compile",
        "dynamic_masking",
        "export",
        "tensorboard",
        "gradient_noise_scale",
    )

    phases: list = gin.REQUIRED
    model: str = "tiny"
    model_overrides: dict | None = None
    optimizer: object = DEFAULT_OPTIMIZER
    eval_every: int | None = None
    eval_steps: int = 10
    target_mlm_accuracy: float | None = None
    vocab_file: str | None = None
    data_dir: str | None = None
    dynamic_masking: bool = False
    loss_spike_factor: float | None = None
    peak_flops: float | None = None
    init_checkpoint: str | None = None
    export: bool = True
    gradient_noise_scale: bool = True

    def __post_init__(self):
        super().__post_init__()
        self.peak_flops = settings.number(
            "train.peak_flops", self.peak_flops, above=0.0, optional=True
        )
        self.loop = self.loop_settings(self.eval_every, self.eval_steps, self.target_mlm_accuracy)
        self.recovery = Recovery(self.max_non_finite_steps, self.loss_spike_factor)
        phases_lib.check(self.phases)
        self._check_evaluation()

    def _check_evaluation(self):
        """Evaluation settings without held-out data: a target that could
        never stop the run is refused; `eval_every` is said to go unused."""
        if any(p.eval_files or p.train_files == corpus.BUILTIN for p in self.phases):
            return
        if self.target_mlm_accuracy is not None:
            raise ConfigError(
                f"train.target_mlm_accuracy={self.target_mlm_accuracy}: no phase has "
                "eval_files to measure it on"
            )
        if self.eval_every is not None:
            self.notes.append(
                f"train.eval_every={self.eval_every}: no phase has eval_files, so the run does "
                "not evaluate (set phase1/Phase.eval_files ...)"
            )


def train(model_dir, pretraining=None, *, strategy=None, engine=None, flags_text=None, **overrides):
    """Pretrains BERT through the phases of `pretraining` (a `Pretraining`;
    default: made from gin's bindings and `overrides`, its fields); returns
    a summary dict.

    Args:
        model_dir: checkpoints, logs, the operative gin config and the
            exported encoder go here; a run restarted on the same
            `model_dir` resumes from its newest checkpoint.
        strategy: a `tf.distribute.Strategy` (default: the default one).
        engine: "tf" (tf.distribute) or "jax" (every JAX device); None:
            the engine of Keras' backend (`engines`).
        flags_text: the command line's flags, kept as `flags.txt`.
    """
    # 1. Everything that can be wrong is checked before any compute.
    s = pretraining or Pretraining(**overrides)
    engine_name = engine or engines.of_backend()
    engines.check(engine_name, strategy)
    engines.check_precision(engine_name, s.precision)
    # A new run's warm start is read and checked before anything is written.
    warm = None
    if s.init_checkpoint and identity.read(model_dir) is None:
        warm = _read_warm_start(s)
    run_dir.check_writable(model_dir)
    # The phases' batches on these devices, before built-in data is made.
    where, replicas = engines.placement(engine_name, strategy)
    max_length = model_lib.bert_config(s.model, s.model_overrides).max_sequence_length
    plans = phases_lib.plan(s.phases, replicas, max_length)
    data_dir, vocab_file = _data_source(s.phases, model_dir, s.data_dir, s.vocab_file)
    if s.dynamic_masking and not vocab_file:
        raise ConfigError("train.dynamic_masking needs train.vocab_file")
    config = model_lib.bert_config(s.model, s.model_overrides, vocab_file)
    files = [inputs.phase_files(plan.phase, data_dir, vocab_file) for plan in plans]

    # 2. The run's state; 3. the run in model_dir: the same one, or stop
    # before writing anything.
    run = life.Life(
        model_dir,
        s,
        engine_name,
        where,
        plans,
        config,
        noise_scale=s.gradient_noise_scale,
    )
    engine = run.engine
    if run.latest is not None and run.saved is None:
        _check_restorable(engine, run.latest, model_dir)  # a run saved before run.json
    vocab_sha256 = file_sha256(vocab_file) if vocab_file else None
    run.check(
        identity.describe(config, vocab_sha256, plans, s.precision, engine.optimizer, engine_name)
    )
    if run.latest is not None:
        warm = None  # the run resumes
    elif s.init_checkpoint and warm is None:  # a run stopped before its first checkpoint
        warm = _read_warm_start(s)
    progress = run.claim(
        flags_text,
        f"BERT {config.num_layers} layers x {config.hidden_dim}, "
        f"{engine.model.count_params():,} parameters, vocabulary {config.vocabulary_size}, "
        f"{type(engine.optimizer).__name__}, {s.precision}, {engine.description}, "
        f"model_dir {model_dir}",
    )
    peak_flops = _announce(run, s, warm)

    # 4. The phases; 5. the encoder.
    vocabulary = Vocabulary(vocab_file) if s.dynamic_masking else None

    def start_phase(plan, phase_files, resume):
        masks = vocabulary and Remasker(vocabulary, max_predictions=plan.phase.max_predictions)
        engine.start_phase(plan, phase_files, s.seed, masks, resume=resume)

    def export(summary):
        if s.export and engine.is_chief:
            summary.update(_export(engine, config, vocab_file, model_dir, progress))

    return run.run_phases(files, start_phase, export, s.recovery, s.loop, peak_flops=peak_flops)


def _announce(run, s, warm):
    """The run's opening lines after its headline; returns the peak FLOP/s
    for MFU (measured unless given; not on TPU)."""
    engine, progress = run.engine, run.progress
    if engine.xla_off:
        progress.message(
            "TensorFlow's TPU build cannot XLA-compile for the CPU: the steps run without "
            "XLA here (train.jit_compile)"
        )
    run.remove_partial_saves()
    peak_flops = s.peak_flops
    if peak_flops is None and engine.platform != "tpu":
        peak_flops = engine.measure_peak_flops(
            "float32" if s.precision == "float32" else "bfloat16"
        )
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
    elif s.init_checkpoint:
        progress.message(
            f"train.init_checkpoint left aside: the run resumes from {run.latest.path}"
        )
    run.say_where_it_starts(
        finished="the run finished at step {step} ({path}): no steps left",
        resuming="resuming from {path} (phase {phase}, step {step})",
        outputs=[ENCODER, GOOGLE_CHECKPOINT],
    )
    return peak_flops


def _export(engine, config, vocab_file, model_dir, progress):
    """The encoder as a keras-hub preset, and the whole model in
    google-research/bert's format."""
    encoder = export_encoder(model_dir, engine.model.get_layer("bert_backbone"), vocab_file)
    progress.message(f"encoder exported to {encoder}")
    google = google_checkpoint.write(
        engine.model, config, vocab_file, os.path.join(model_dir, GOOGLE_CHECKPOINT)
    )
    progress.message(f"model exported in google-research/bert's format to {google}")
    return {"encoder": encoder, "google_checkpoint": google}


def _read_warm_start(s):
    """`warm_start.read` of `s.init_checkpoint` against the data the phases
    name, without making built-in data or copying a vocabulary into the
    run's folders."""
    phases, vocab_file = s.phases, s.vocab_file
    if any(p.train_files == corpus.BUILTIN for p in phases):
        vocab_file, do_lower_case = builtin.KEPT_VOCAB, builtin.DO_LOWER_CASE
    else:
        if vocab_file and "://" in vocab_file:
            vocab_file = _local_copy(vocab_file)
        manifest = records.read_manifest(os.path.dirname(match_files(phases[0].train_files)[0]))
        do_lower_case = None if manifest is None else manifest.get("do_lower_case")
    config = model_lib.bert_config(s.model, s.model_overrides, vocab_file)
    return warm_start.read(s.init_checkpoint, config, vocab_file, do_lower_case)


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
