"""`finetune(...)`: fine-tuning a pretrained encoder, read top to bottom;
its settings are `FineTuning` (gin's `finetune.*`). The steps it shares
with pretraining are `run.life`'s.

1. Read the encoder and its tokenizer, the task's data, every setting:
   all checked before any compute.
2. Write the training features as TFRecords (once per data and settings)
   and plan the one phase: warmup, then linear decay to 0 over the epochs.
3. Build the run on the engine (tf.distribute or JAX), with the task's head; check
   that `model_dir` holds no other run; resume from its newest checkpoint.
4. Train with the pretraining trainer's loop (checkpoints, progress,
   TensorBoard, log.jsonl, recovery, preemption).
5. Predict every evaluation and test set; score, write the prediction files
   and `eval_results.json`.
6. Export the model for others' programs: a keras-hub classifier preset or
   a SQuAD answering folder (`export/`), and a SavedModel that takes raw
   text (`saved_model/`).
"""

import dataclasses
import json
import math
import os
from typing import ClassVar

import gin
import keras

import lamb_tf
from trainers.bert import engines, settings
from trainers.bert.data.input.inputs import PhaseFiles
from trainers.bert.data.records import file_sha256
from trainers.bert.errors import ConfigError
from trainers.bert.finetune import datasets, glue, records
from trainers.bert.finetune.export import answering, serving, span_serving, task_preset
from trainers.bert.formats import preset
from trainers.bert.run import identity, life, run_dir
from trainers.bert.run import phases as phases_lib
from trainers.bert.run.recovery import Recovery

RESULTS = "eval_results.json"
PREDICTIONS = "predictions"
EXPORT, SAVED_MODEL = "export", "saved_model"
_SQUAD = ("squad",)
# Settings only some tasks read; given to another task they are refused.
TASK_SETTINGS = {
    "data_dir": tuple(glue.TASKS),
    **{
        name: _SQUAD
        for name in (
            "train_file",
            "predict_file",
            "doc_stride",
            "max_query_length",
            "n_best_size",
            "max_answer_length",
            "null_score_threshold",
        )
    },
}


@gin.configurable(module="finetune")
def adamw(
    learning_rate,
    weight_decay=0.01,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
    exclude_from_weight_decay=("bias", "gamma", "beta"),
):
    """`keras.optimizers.AdamW` with the BERT recipe's weight-decay
    exclusions (Keras matches variable names: biases and LayerNorm's
    gamma and beta)."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
    )
    optimizer.exclude_from_weight_decay(var_names=list(exclude_from_weight_decay))
    return optimizer


gin.external_configurable(lamb_tf.LAMB, module="lamb_tf")


@gin.configurable("finetune")
@dataclasses.dataclass
class FineTuning(life.RunSettings):
    """The fine-tuning job's settings, checked when made; gin binds them as
    `finetune.<name>`.

    Args:
        task: "squad", a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli,
            qnli, rte, wnli) or "pydoc_topics" (built in, offline).
        encoder: a keras-hub BERT preset folder (the pretraining trainer's
            model_dir/encoder, or a downloaded keras-hub preset).
        pretrained: False keeps the encoder's random initialisation (same
            shape): the baseline that shows what pretraining gave.
        records_dir: a local folder for the features' TFRecords (default
            model_dir/data; needed when model_dir is on an object store).
        data_dir: GLUE: the task's folder (train.tsv, dev.tsv, test.tsv).
        train_file, predict_file: SQuAD: the training and dev JSON files.
        vocab_file, lowercase: the tokenizer, when not the preset's own.
        max_seq_length: tokens per feature.
        doc_stride, max_query_length: SQuAD's windows (`squad`).
        global_batch_size: features per update, over all replicas.
        micro_batch_size: features per replica per forward pass (gradient
            accumulation when smaller than the per-replica batch); also the
            prediction batch per replica.
        epochs: passes over the training features (fractions allowed).
        learning_rate: the peak, reached after the warmup.
        warmup_proportion: of the steps, with linear warmup from 0; then
            linear decay to 0.
        optimizer: called as `optimizer(learning_rate=...)`: `adamw` (the
            BERT recipe) or `lamb_tf.LAMB`.
        layer_decay: layer-wise learning-rate decay (`layer_decay`), e.g.
            0.9 for BERT-base; None: one rate for every variable.
        clip_norm, precision, jit_compile, steps_per_loop, checkpoint_every,
            keep_checkpoints, max_non_finite_steps, seed, tensorboard,
            input_pipelines: as the pretraining trainer's
            (`trainers.bert.train.Pretraining`); a run's batches depend on
            `input_pipelines` (None: the number of workers), not on how
            devices are spread over workers.
        n_best_size, max_answer_length, null_score_threshold: SQuAD's span
            decoding (`spans`).
        export: write the fine-tuned model for others' programs at the
            end: model_dir/export (a keras-hub `TextClassifier` preset, or
            SQuAD's answering folder) and model_dir/saved_model (a
            TensorFlow SavedModel on raw strings).
    """

    NAME: ClassVar[str] = "finetune"
    BOOLEANS: ClassVar[tuple] = ("pretrained", "jit_compile", "tensorboard", "export")

    task: str = gin.REQUIRED
    encoder: str = gin.REQUIRED
    pretrained: bool = True
    records_dir: str | None = None
    data_dir: str | None = None
    train_file: str | None = None
    predict_file: str | None = None
    vocab_file: str | None = None
    lowercase: bool | None = None
    max_seq_length: int = 128
    doc_stride: int = 128
    max_query_length: int = 64
    global_batch_size: int = 32
    micro_batch_size: int | None = None
    epochs: float = 3.0
    learning_rate: float = 5e-5
    warmup_proportion: float = 0.1
    optimizer: object = adamw
    layer_decay: float | None = None
    checkpoint_every: int | None = 1000
    keep_checkpoints: int = 1
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_threshold: float = 0.0
    export: bool = True

    def __post_init__(self):
        if self.task not in datasets.TASKS:
            raise ConfigError(
                f"finetune.task={self.task!r}: choose one of {', '.join(datasets.TASKS)}"
            )
        super().__post_init__()
        self.epochs = settings.number("finetune.epochs", self.epochs, above=0.0)
        self.learning_rate = settings.number(
            "finetune.learning_rate", self.learning_rate, above=0.0
        )
        self.warmup_proportion = settings.number(
            "finetune.warmup_proportion", self.warmup_proportion, 0.0, 1.0
        )
        self.layer_decay = settings.number(
            "finetune.layer_decay", self.layer_decay, above=0.0, high=1.0, optional=True
        )
        for name in (
            "max_seq_length",
            "doc_stride",
            "max_query_length",
            "n_best_size",
            "max_answer_length",
        ):
            settings.integer(f"finetune.{name}", getattr(self, name))
        self._check_read_by_task()
        self.loop = self.loop_settings()
        self.recovery = Recovery(self.max_non_finite_steps, None)

    def _check_read_by_task(self):
        """Settings only other tasks read are refused: `--train_file` with
        a GLUE task, a SQuAD window with the built-in one, would be ignored."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        ignored = [
            f"finetune.{name}={getattr(self, name)!r}"
            for name, tasks in TASK_SETTINGS.items()
            if self.task not in tasks and getattr(self, name) != defaults[name]
        ]
        if ignored:
            them = "it" if len(ignored) == 1 else "them"
            raise ConfigError(
                f"{', '.join(ignored)}: finetune.task={self.task!r} does not read {them}"
            )


def finetune(
    model_dir, fine_tuning=None, *, strategy=None, engine=None, flags_text=None, **overrides
):
    """Fine-tunes the encoder of `fine_tuning` (a `FineTuning`; default: made
    from gin's bindings and `overrides`, its fields) on its task; returns a
    summary dict with the scores of each evaluation set.

    Args:
        model_dir: checkpoints, logs, the prediction files (predictions/)
            and eval_results.json.
        strategy: a `tf.distribute.Strategy` (default: the default one).
        engine: "tf" (tf.distribute) or "jax" (every JAX device); None:
            the engine of Keras' backend (`engines`).
        flags_text: the command line's flags, kept as `flags.txt`.
    """
    # 1. Everything that can be wrong is checked before any compute.
    s = fine_tuning or FineTuning(**overrides)
    engine_name = engine or engines.of_backend()
    engines.check(engine_name, strategy)
    engines.check_precision(engine_name, s.precision)
    source = preset.read(s.encoder, s.vocab_file, s.lowercase)
    config = source.config
    _check_lengths(s, config)
    where, replicas = engines.placement(engine_name, strategy)
    _phase(s, 1, None, replicas, config)  # the batch on these replicas, before the data is made
    run_dir.check_writable(model_dir)
    folder = _records_folder(s, model_dir)
    print(f"reading and tokenizing the {s.task} data", flush=True)
    data = datasets.load(
        s.task,
        source.tokenizer,
        s.max_seq_length,
        s.data_dir,
        s.train_file,
        s.predict_file,
        s.doc_stride,
        s.max_query_length,
        s.n_best_size,
        s.max_answer_length,
        s.null_score_threshold,
    )

    # 2. The features as records, and the phase.
    made_by, task_identity, (train_path, train_count) = _train_records(
        s, source, data, folder, model_dir
    )
    steps = max(1, math.ceil(s.epochs * train_count / s.global_batch_size))
    plan = _phase(s, steps, train_path, replicas, config)
    data.head.weights = source.weights if s.pretrained else None
    data.head.layer_decay = s.layer_decay
    data.head.seed = s.seed

    # 3. The run's state, and the run in model_dir.
    run = life.Life(model_dir, s, engine_name, where, [plan], config, task=data.head)
    engine = run.engine
    vocab_sha256 = made_by[1]
    run.check(
        identity.describe(
            config,
            vocab_sha256,
            [plan],
            s.precision,
            engine.optimizer,
            engine_name,
            task_identity,
        )
    )
    progress = run.claim(
        flags_text,
        f"fine-tuning on {s.task}: {train_count} training features, {steps} steps; encoder "
        f"{s.encoder} ({'pretrained' if s.pretrained else 'random initialisation'}), "
        f"{config.num_layers} layers x {config.hidden_dim}, {type(engine.optimizer).__name__}, "
        f"{s.precision}, {engine.description}, model_dir {model_dir}",
        shown=data.head.shown,
    )
    for note in data.notes:
        progress.message(note)
    run.remove_partial_saves()
    run.say_where_it_starts(
        finished="the run finished at step {step} ({path}): predicting",
        resuming="resuming from {path} (step {step})",
        outputs=[PREDICTIONS, RESULTS, EXPORT, SAVED_MODEL],
    )

    # 4. Training; 5. predictions and scores; 6. the exported model.
    def start_phase(plan, phase_files, resume):
        engine.start_phase(plan, phase_files, s.seed, resume=resume)

    def predict(summary):
        summary["results"] = _predict(engine, plan, data, folder, made_by, model_dir, progress)
        if s.export and engine.is_chief:
            summary.update(_export(engine.model, s, data, source.tokenizer, model_dir, progress))

    files = [PhaseFiles([train_path], None, None)]
    summary = run.run_phases(
        files, start_phase, predict, s.recovery, s.loop, peak_flops=None, task=data.head
    )
    summary.setdefault("results", {})
    return summary


def _train_records(s, source, data, folder, model_dir):
    """(what makes the records, the run's task identity, (path, count) of
    the training features' records). Records are named by what makes them:
    the data, the tokenizer and the settings; written once."""
    made_by = (
        s.task,
        file_sha256(source.tokenizer.vocab_file),
        source.tokenizer.lowercase,
        s.max_seq_length,
        s.doc_stride,
        s.max_query_length,
    )
    data_key = records.key(data.source, *made_by)
    task_identity = {
        "name": s.task,
        "encoder": os.path.abspath(s.encoder),
        "pretrained": s.pretrained,
        "data": data_key,
    }
    identity.check_task(model_dir, task_identity)  # before the records are written there
    written = _records(folder, f"train-{data_key}", data.train, s.max_seq_length)
    return made_by, task_identity, written


def _records_folder(s, model_dir):
    """The local folder of the features' records (model_dir/data unless
    given; the records are written as local files)."""
    if s.records_dir is None and "://" in model_dir:
        raise ConfigError(
            f"with model_dir {model_dir!r} set finetune.records_dir to a local folder for the "
            "features' records"
        )
    return s.records_dir or os.path.join(model_dir, "data")


def _check_lengths(s, config):
    """The features fit the encoder, and a SQuAD question leaves room for
    its context."""
    if s.max_seq_length > config.max_sequence_length:
        raise ConfigError(
            f"finetune.max_seq_length={s.max_seq_length} exceeds the encoder's "
            f"max_sequence_length={config.max_sequence_length}"
        )
    if s.task == "squad" and s.max_query_length + 3 >= s.max_seq_length:
        raise ConfigError(
            f"finetune.max_query_length={s.max_query_length} leaves no room for the context in "
            f"max_seq_length={s.max_seq_length}"
        )


def _phase(s, steps, train_path, replicas, config):
    """The run's one phase, planned on `replicas`: warmup, then linear decay
    to 0."""
    phase = phases_lib.Phase(
        seq_length=s.max_seq_length,
        global_batch_size=s.global_batch_size,
        steps=steps,
        peak_learning_rate=s.learning_rate,
        warmup_steps=int(s.warmup_proportion * steps) if train_path else 0,
        power=1.0,
        max_predictions=1,  # no masked LM here
        train_files=train_path or "",
        micro_batch_size=s.micro_batch_size,
    )
    (plan,) = phases_lib.plan([phase], replicas, config.max_sequence_length)
    return plan


def _export(model, s, data, tokenizer, model_dir, progress):
    """The fine-tuned model as model_dir/export (a keras-hub classifier
    preset, or SQuAD's answering folder) and model_dir/saved_model (a
    SavedModel on raw strings, written from that folder)."""
    path = os.path.join(model_dir, EXPORT)
    if s.task == "squad":
        answering.write(path, model, tokenizer, answering.Settings.of(s, data.is_v2))
        writer = span_serving
    else:
        labels = task_preset.labels_of(s.task)
        task_preset.write(path, model, data.head, tokenizer, s.max_seq_length, labels, s.task)
        writer = serving
    progress.message(f"model exported to {path}")
    saved_model = writer.write_saved_model(os.path.join(model_dir, SAVED_MODEL), path)
    progress.message(f"SavedModel (raw text in) written to {saved_model}")
    return {EXPORT: path, SAVED_MODEL: saved_model}


def _records(folder, name, features, seq_length):
    """(path, count) of the features' records, written unless made before."""

    def serialized():
        print(f"writing {len(features)} features to {folder}/{name}.tfrecord", flush=True)
        for index, (token_ids, segment_ids, labels) in enumerate(features):
            yield records.serialize(index, token_ids, segment_ids, seq_length, **labels)

    return records.cached(folder, name, serialized)


def _predict(engine, plan, data, folder, made_by, model_dir, progress):
    results = {}
    output = os.path.join(model_dir, PREDICTIONS)
    for split in data.splits:
        path, _ = _records(
            folder,
            f"{split.name}-{records.key(split.source, *made_by)}",
            split.features,
            plan.phase.seq_length,
        )
        outputs = engine.predict(plan, [path])
        if engine.is_chief:
            for written in split.write(outputs, output):
                progress.message(f"wrote {written}")
        if split.score is None:
            continue
        figures = {k: float(v) for k, v in split.score(outputs).items()}
        results[split.name] = figures
        progress.result(split.name, engine.step, figures)
    if engine.is_chief and results:
        text = json.dumps({"step": engine.step, **results}, indent=1, sort_keys=True)
        progress.message(
            f"wrote {run_dir.write_atomically(os.path.join(model_dir, RESULTS), text)}"
        )
    return results
