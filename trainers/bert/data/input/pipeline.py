"""The tf.data pipeline over BERT pretraining TFRecords.

Reads the google-research/bert schema (and Model Garden's "v2" names
`input_word_ids`/`input_type_ids`), checks the files before training, and
yields fixed-shape int32 batches under the names keras-hub's `BertBackbone`
takes (`token_ids`, `segment_ids`, `padding_mask`) plus the pretraining
targets. Iterators are checkpointable with `tf.train.Checkpoint`, so a resumed
run continues with the next batch.
"""

import concurrent.futures
import os

import tensorflow as tf

from trainers import atomic
from trainers.bert.data import records
from trainers.bert.errors import DataError

V1_NAMES = {"token_ids": "input_ids", "segment_ids": "segment_ids"}
V2_NAMES = {"token_ids": "input_word_ids", "segment_ids": "input_type_ids"}


def _feature_names(example, path):
    keys = set(example.features.feature)
    if "input_ids" in keys:
        return V1_NAMES
    if "input_word_ids" in keys:
        return V2_NAMES
    raise DataError(
        f"{path}: no 'input_ids' (or v2 'input_word_ids') feature; found {sorted(keys)}"
    )


def _spec(seq_length, max_predictions, names):
    """The schema's parsing spec under this data's feature names."""
    renamed = {"input_ids": names["token_ids"], "segment_ids": names["segment_ids"]}
    spec = records.feature_spec(seq_length, max_predictions)
    return {renamed.get(name, name): feature for name, feature in spec.items()}


def _check_example(example, path, names, seq_length, max_predictions):
    features = example.features.feature
    for name, feature in _spec(seq_length, max_predictions, names).items():
        if name not in features:
            raise DataError(f"{path}: feature {name!r} is missing")
        kind = "float_list" if feature.dtype == tf.float32 else "int64_list"
        values = getattr(features[name], kind).value
        length = feature.shape[0]
        if len(values) != length:
            raise DataError(
                f"{path}: feature {name!r} has length {len(values)}, expected {length} "
                f"for this phase (max_seq_length={seq_length}, "
                f"max_predictions_per_seq={max_predictions})"
            )


def validate(files, seq_length, max_predictions, vocab_file=None, read_all=False, pattern=None):
    """Checks the shards before any training; returns the feature names.

    Against manifest.json where one lies beside the shards: the vocabulary's
    hash; that the manifest lists every file matched in its folder (files
    of another run left beside this one's are named, not trained on) and
    that every shard it lists is there; each shard's size (a truncated
    shard is named) and, where the manifest records one, the SHA-256 of
    each shard's bytes, so a shard corrupted anywhere is named
    (`check_shards`: files read in parallel threads). Everywhere: no file
    is matched twice, and none is a temporary file an interrupted write
    left. In every shard, the first record (all records with `read_all`)
    must parse with the phase's lengths; a corrupt record names its file.
    `pattern`: what matched `files`, for the messages (e.g. "train_files
    'data/*.tfrecord'")."""
    matched = pattern or "the file pattern"
    _check_names(files, matched)
    manifests = {}
    vocab_sha256 = records.file_sha256(vocab_file) if vocab_file is not None else None
    listed = []  # (path, its manifest entry)
    unlisted = {}  # folder -> matched files its manifest does not list
    for path in files:
        folder = os.path.dirname(path)
        if folder not in manifests:
            manifest = records.read_manifest(folder)
            entries = None
            if manifest is not None:
                _check_vocabulary(folder, manifest, vocab_file, vocab_sha256)
                entries = records.shard_entries(folder, manifest)
            manifests[folder] = entries
        entries = manifests[folder]
        if entries is not None:
            entry = entries.get(os.path.basename(path))
            if entry is None:
                unlisted.setdefault(folder, []).append(path)
            else:
                listed.append((path, entry))
    if unlisted:
        folder, paths = next(iter(unlisted.items()))
        raise DataError(
            f"{_manifest_path(folder)} does not list {_some(paths)} that {matched} matches, "
            f"beside the {len(manifests[folder])} shards it lists: files not of its set are "
            "not trained on; remove them (the data tool's --overwrite replaces a folder's "
            "shards), or make the pattern match only the shards it lists"
        )
    _check_complete(manifests, listed)
    check_shards(listed)
    names = None
    for path in files:
        count = 0
        try:
            for raw in tf.data.TFRecordDataset(path).take(-1 if read_all else 1):
                example = tf.train.Example.FromString(raw.numpy())
                file_names = _feature_names(example, path)
                if names is not None and file_names != names:
                    raise DataError(f"{path}: uses other feature names than {files[0]}")
                names = file_names
                _check_example(example, path, names, seq_length, max_predictions)
                count += 1
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            raise DataError(
                f"{path}: corrupt or truncated TFRecord file ({error.message})"
            ) from None
        if count == 0:
            raise DataError(f"{path}: holds no records")
    return names


def _check_names(files, matched):
    temporary = [path for path in files if atomic.target_of(path)]
    if temporary:
        raise DataError(
            f"{matched} matches {_some(temporary)}: temporary files an interrupted write "
            "left (the name ends in .tmp-<process id>), not finished shards; remove them, "
            "or end the pattern in .tfrecord"
        )
    seen, twice = set(), []
    for path in files:
        if path in seen and path not in twice:
            twice.append(path)
        seen.add(path)
    if twice:
        raise DataError(
            f"{matched} matches {_some(twice)} more than once (overlapping patterns): each "
            "would be read as often as it is matched; give each file once"
        )


def _check_complete(manifests, listed):
    """Every shard a manifest lists is in its folder: a set with a shard
    missing is not the set the manifest describes. (Matching only some of
    a folder's shards, e.g. one for evaluation, is fine.) The folder is
    listed only where the files matched are not all it lists."""
    matched = {}
    for path, _ in listed:
        matched.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
    for folder, entries in manifests.items():
        if not entries or set(entries) <= matched.get(folder, set()):
            continue
        try:
            present = {name.rstrip("/") for name in tf.io.gfile.listdir(folder)}
        except tf.errors.OpError:
            continue  # a store that cannot list: the shards matched are checked anyway
        missing = sorted(set(entries) - present)
        if missing:
            raise DataError(
                f"{_manifest_path(folder)} lists {_some(missing)}, not in {folder}: the set "
                "is incomplete; restore the shard(s), or make the data again with the data tool"
            )


def _manifest_path(folder):
    return os.path.join(folder, records.MANIFEST)


def _some(paths, shown=3):
    """ "N file(s) (a, b, c, ...)" for messages."""
    names = [os.path.basename(p) for p in paths]
    more = ", ..." if len(names) > shown else ""
    return f"{len(names)} file(s) ({', '.join(names[:shown])}{more})"


def check_shards(listed, threads=16):
    """Checks shards against their manifest entries, `listed` as [(path,
    entry)]: the size, then the SHA-256 where the entry has one (manifests
    written before checksums have none: size only). The files are read in
    up to `threads` threads (through tf.io.gfile, so also on gs://; hashlib
    hashes without holding the GIL); the first failing shard in `listed`
    order is named."""
    if not listed:
        return
    pool = concurrent.futures.ThreadPoolExecutor(min(threads, len(listed)))
    try:
        for future in [pool.submit(_check_shard, path, entry) for path, entry in listed]:
            future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _check_shard(path, entry):
    size = tf.io.gfile.stat(path).length
    if size != entry["bytes"]:
        raise DataError(
            f"{path}: {size} bytes where manifest.json records {entry['bytes']}: "
            "the shard is truncated or was changed"
        )
    if "sha256" in entry and records.file_sha256(path) != entry["sha256"]:
        raise DataError(
            f"{path}: its SHA-256 checksum differs from manifest.json: the shard is "
            "corrupt or was changed"
        )


def _check_vocabulary(folder, manifest, vocab_file, vocab_sha256):
    if vocab_sha256 is not None and "vocab_sha256" in manifest:
        if vocab_sha256 != manifest["vocab_sha256"]:
            raise DataError(
                f"The vocabulary {vocab_file} is not the one the data in "
                f"{folder} was made with (manifest.json vocab_sha256 differs)"
            )


def pretraining_parser(seq_length, max_predictions, names=V1_NAMES):
    """Serialized records -> a batch of the pretraining schema, under the
    names keras-hub's `BertBackbone` takes."""
    spec = _spec(seq_length, max_predictions, names)

    def parse(serialized):
        example = tf.io.parse_example(serialized, spec)
        return {
            "token_ids": tf.cast(example[names["token_ids"]], tf.int32),
            "segment_ids": tf.cast(example[names["segment_ids"]], tf.int32),
            "padding_mask": tf.cast(example["input_mask"], tf.int32),
            "masked_lm_positions": tf.cast(example["masked_lm_positions"], tf.int32),
            "masked_lm_ids": tf.cast(example["masked_lm_ids"], tf.int32),
            "masked_lm_weights": example["masked_lm_weights"],
            "next_sentence_labels": tf.cast(example["next_sentence_labels"][:, 0], tf.int32),
        }

    return parse


def make_dataset(
    files,
    seq_length,
    max_predictions,
    batch_size,
    names=V1_NAMES,
    remasker=None,
    seed=0,
    skip_batches=0,
    parse=None,
    **kwargs,
):
    """Pretraining batches of `batch_size` (per replica) from `files`,
    already validated (`records_dataset`, whose arguments `kwargs` are). A
    `remask.Remasker` draws new masked-LM targets for every batch. `parse`
    replaces the pretraining schema's parser (another task's records)."""
    parse = parse or pretraining_parser(seq_length, max_predictions, names)
    dataset = records_dataset(
        files, parse, batch_size, seed=seed, skip_batches=skip_batches, **kwargs
    )
    if remasker is not None:
        dataset = dataset.enumerate(start=skip_batches).map(
            lambda index, batch: remasker(batch, tf.stack([tf.cast(seed, tf.int64), index])),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def records_dataset(
    files,
    parse,
    batch_size,
    input_context=None,
    shuffle=True,
    repeat=True,
    seed=0,
    shuffle_buffer=10000,
    cycle_length=8,
    skip_batches=0,
):
    """Batches of `batch_size` records of `files`, parsed by `parse`.

    Under `strategy.distribute_datasets_from_function`, pass its
    `input_context`: each input pipeline reads its own subset of files (or,
    with fewer files than pipelines, every n-th record). `skip_batches`
    resumes a pipeline that cannot be checkpointed: the first batches are
    read but not parsed."""
    dataset = tf.data.Dataset.from_tensor_slices(files)
    pipelines = input_context.num_input_pipelines if input_context else 1
    index = input_context.input_pipeline_id if input_context else 0
    by_file = len(files) >= pipelines
    if by_file:
        dataset = dataset.shard(pipelines, index)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(cycle_length, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if not by_file:
        dataset = dataset.shard(pipelines, index)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True).skip(skip_batches)
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
