"""`finetune(...)`: fine-tuning a pretrained encoder, read top to bottom.

1. Read the encoder and its tokenizer, the task's data, every setting:
   all checked before any compute.
2. Write the training features as TFRecords (once per data and settings)
   and plan the one phase: warmup, then linear decay to 0 over the epochs.
3. Build the run on the tf.distribute engine, with the task's head; check
   that `model_dir` holds no other run; resume from its newest checkpoint.
4. Train with the pretraining trainer's loop (checkpoints, progress,
   TensorBoard, log.jsonl, recovery, preemption).
5. Predict every evaluation and test set; score, write the prediction files
   and `eval_results.json`.
"""

import contextlib
import json
import math
import os

import gin
import keras

import lamb_tf
from trainers.bert import engines, settings
from trainers.bert.data.input.inputs import PhaseFiles
from trainers.bert.data.records import file_sha256
from trainers.bert.errors import ConfigError
from trainers.bert.finetune import datasets, records
from trainers.bert.formats import preset
from trainers.bert.run import identity, run_dir
from trainers.bert.run import phases as phases_lib
from trainers.bert.run.loop import Loop, LoopSettings
from trainers.bert.run.preemption import PreemptionWatcher
from trainers.bert.run.progress import Progress
from trainers.bert.run.recovery import Recovery
from trainers.bert.train import PRECISIONS

RESULTS = "eval_results.json"
PREDICTIONS = "predictions"


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


@gin.configurable(denylist=["model_dir", "strategy", "flags_text"])
def finetune(
    model_dir,
    task=gin.REQUIRED,
    encoder=gin.REQUIRED,
    strategy=None,
    flags_text=None,
    pretrained=True,
    records_dir=None,
    data_dir=None,
    train_file=None,
    predict_file=None,
    vocab_file=None,
    lowercase=None,
    max_seq_length=128,
    doc_stride=128,
    max_query_length=64,
    global_batch_size=32,
    micro_batch_size=None,
    epochs=3.0,
    learning_rate=5e-5,
    warmup_proportion=0.1,
    optimizer=adamw,
    layer_decay=None,
    clip_norm=1.0,
    precision="float32",
    jit_compile=True,
    steps_per_loop=10,
    checkpoint_every=1000,
    keep_checkpoints=1,
    max_non_finite_steps=10,
    seed=0,
    n_best_size=20,
    max_answer_length=30,
    null_score_threshold=0.0,
    tensorboard=True,
):
    """Fine-tunes `encoder` on `task`; returns a summary dict with the
    scores of each evaluation set.

    Args:
        model_dir: checkpoints, logs, the prediction files (predictions/)
            and eval_results.json.
        task: "squad", a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli,
            qnli, rte, wnli) or "pydoc_topics" (built in, offline).
        encoder: a keras-hub BERT preset folder (the pretraining trainer's
            model_dir/encoder, or a downloaded keras-hub preset).
        strategy: a `tf.distribute.Strategy` (default: the default one).
        flags_text: the command line's flags, kept as `flags.txt`.
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
            keep_checkpoints, max_non_finite_steps, seed, tensorboard: as
            the pretraining trainer's (`trainers.bert.train.train`).
        n_best_size, max_answer_length, null_score_threshold: SQuAD's span
            decoding (`spans`).
    """
    # 1. Everything that can be wrong is checked before any compute.
    if task not in datasets.TASKS:
        raise ConfigError(f"finetune.task={task!r}: choose one of {', '.join(datasets.TASKS)}")
    engines.check("tf", strategy)
    if precision not in PRECISIONS:
        raise ConfigError(f"finetune.precision={precision!r}: choose one of {PRECISIONS}")
    for name, value in (
        ("pretrained", pretrained),
        ("jit_compile", jit_compile),
        ("tensorboard", tensorboard),
    ):
        settings.boolean(f"finetune.{name}", value)
    epochs = settings.number("finetune.epochs", epochs, above=0.0)
    learning_rate = settings.number("finetune.learning_rate", learning_rate, above=0.0)
    warmup_proportion = settings.number("finetune.warmup_proportion", warmup_proportion, 0.0, 1.0)
    clip_norm = settings.number("finetune.clip_norm", clip_norm, above=0.0, optional=True)
    layer_decay = settings.number(
        "finetune.layer_decay", layer_decay, above=0.0, high=1.0, optional=True
    )
    for name, value in (
        ("max_seq_length", max_seq_length),
        ("doc_stride", doc_stride),
        ("max_query_length", max_query_length),
        ("n_best_size", n_best_size),
        ("max_answer_length", max_answer_length),
        ("keep_checkpoints", keep_checkpoints),
    ):
        settings.integer(f"finetune.{name}", value)
    seed = settings.integer("finetune.seed", seed, minimum=0)
    run_dir.check_optimizer("finetune.optimizer", optimizer)
    loop_settings = LoopSettings(steps_per_loop, checkpoint_every, None, 1, None)
    recovery = Recovery(max_non_finite_steps, None)
    source = preset.read(encoder, vocab_file, lowercase)
    config = source.config
    if max_seq_length > config.max_sequence_length:
        raise ConfigError(
            f"finetune.max_seq_length={max_seq_length} exceeds the encoder's "
            f"max_sequence_length={config.max_sequence_length}"
        )
    if task == "squad" and max_query_length + 3 >= max_seq_length:
        raise ConfigError(
            f"finetune.max_query_length={max_query_length} leaves no room for the context in "
            f"max_seq_length={max_seq_length}"
        )
    where, replicas = engines.placement("tf", strategy)
    _phase(
        max_seq_length,
        global_batch_size,
        1,
        learning_rate,
        0.0,
        None,
        micro_batch_size,
        replicas,
        config,
    )  # the batch on these replicas, before the data is made
    run_dir.check_writable(model_dir)
    if records_dir is None and "://" in model_dir:
        raise ConfigError(
            f"with model_dir {model_dir!r} set finetune.records_dir to a local folder for the "
            "features' records"
        )
    folder = records_dir or os.path.join(model_dir, "data")
    print(f"reading and tokenizing the {task} data", flush=True)
    data = datasets.load(
        task,
        source.tokenizer,
        max_seq_length,
        data_dir,
        train_file,
        predict_file,
        doc_stride,
        max_query_length,
        n_best_size,
        max_answer_length,
        null_score_threshold,
    )

    # 2. The features as records, and the phase.
    # Records are named by what makes them: the file, tokenizer and settings.
    vocab_sha256 = file_sha256(source.tokenizer.vocab_file)
    made_by = (
        task,
        vocab_sha256,
        source.tokenizer.lowercase,
        max_seq_length,
        doc_stride,
        max_query_length,
    )
    data_key = records.key(data.source, *made_by)
    task_identity = {
        "name": task,
        "encoder": os.path.abspath(encoder),
        "pretrained": pretrained,
        "data": data_key,
    }
    identity.check_task(model_dir, task_identity)  # before the records are written there
    train_path, train_count = _records(folder, f"train-{data_key}", data.train, max_seq_length)
    steps = max(1, math.ceil(epochs * train_count / global_batch_size))
    plan = _phase(
        max_seq_length,
        global_batch_size,
        steps,
        learning_rate,
        warmup_proportion,
        train_path,
        micro_batch_size,
        replicas,
        config,
    )
    data.head.weights = source.weights if pretrained else None
    data.head.layer_decay = layer_decay

    # 3. The run's state, and the run in model_dir.
    keras.utils.set_random_seed(seed)
    schedule = phases_lib.schedule([plan])
    engine = engines.make(
        "tf",
        where,
        [plan],
        None,
        config=config,
        optimizer=optimizer,
        schedule=schedule,
        precision=precision,
        model_dir=model_dir,
        keep_checkpoints=keep_checkpoints,
        clip_norm=clip_norm,
        jit_compile=jit_compile,
        task=data.head,
    )
    run_dir.check_disk(model_dir, engine.checkpoint_bytes())
    latest = engine.latest()
    run = identity.describe(
        config,
        vocab_sha256,
        [plan],
        precision,
        engine.optimizer,
        "tf",
        task_identity,
    )
    identity.check(model_dir, identity.read(model_dir), run, latest)
    if engine.is_chief:
        identity.write(model_dir, run)
        run_dir.write_text(model_dir, "operative_config.gin", gin.operative_config_str())
        if flags_text is not None:
            run_dir.write_text(model_dir, "flags.txt", flags_text)
    progress = Progress(
        model_dir, 1, tensorboard=tensorboard, write=engine.is_chief, shown=data.head.shown
    )
    progress.message(
        f"fine-tuning on {task}: {train_count} training features, {steps} steps; encoder "
        f"{encoder} ({'pretrained' if pretrained else 'random initialisation'}), "
        f"{config.num_layers} layers x {config.hidden_dim}, {type(engine.optimizer).__name__}, "
        f"{precision}, {engine.description}, model_dir {model_dir}"
    )
    for note in data.notes:
        progress.message(note)
    removed = engine.remove_partial_saves()
    if removed:
        progress.message(f"removed the partial files of a failed save: {', '.join(removed)}")
    if latest and latest.step >= plan.last_step:
        engine.restore(latest)
        progress.message(f"the run finished at step {latest.step} ({latest.path}): predicting")
    elif latest:
        progress.message(f"resuming from {latest.path} (step {latest.step})")

    # 4. Training.
    summary = {"preempted": False, "train": None, "results": {}}
    with contextlib.closing(progress), PreemptionWatcher() as preemption:
        if not latest or latest.step < plan.last_step:
            loop = Loop(
                engine,
                loop_settings,
                recovery,
                progress,
                schedule=schedule,
                config=config,
                plans=[plan],
                peak_flops=None,
                preemption=preemption,
                saved_step=latest.step if latest else None,
                task=data.head,
            )
            engine.start_phase(plan, PhaseFiles([train_path], None, None), seed, resume=latest)
            summary.update(loop.run_phase(plan, PhaseFiles([train_path], None, None)))

        # 5. Predictions and scores.
        if not summary["preempted"]:
            summary["results"] = _predict(engine, plan, data, folder, made_by, model_dir, progress)
    summary.update(step=engine.step, model=engine.model, exit_status=preemption.exit_status)
    return summary


def _phase(
    seq_length,
    batch,
    steps,
    learning_rate,
    warmup_proportion,
    train_path,
    micro_batch,
    replicas,
    config,
):
    """The run's one phase, planned on `replicas`: warmup, then linear decay
    to 0."""
    phase = phases_lib.Phase(
        seq_length=seq_length,
        global_batch_size=batch,
        steps=steps,
        peak_learning_rate=learning_rate,
        warmup_steps=int(warmup_proportion * steps),
        power=1.0,
        max_predictions=1,  # no masked LM here
        train_files=train_path or "",
        micro_batch_size=micro_batch,
    )
    (plan,) = phases_lib.plan([phase], replicas, config.max_sequence_length)
    return plan


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
