"""Create BERT pretraining TFRecords from text: `create(...)` writes the
shards in parallel processes, each atomically, with a manifest.json beside
them that the trainer checks. The command line is `__main__.py`."""

import itertools
import multiprocessing
import os
import shutil
import time

from absl import logging

from trainers.bert.data import records
from trainers.bert.data.shards import corpus, instances, vocab
from trainers.bert.errors import ConfigError, DataError


def write_shard(task):
    """Writes one shard; the unit of work for processes (or a Beam ParDo)."""
    files, vocab_file, do_lower_case, options, shard, path, num_shards, seed = task
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    vocabulary = vocab.Vocabulary(vocab_file, do_lower_case)
    stream = instances.shard_instances(
        lambda: corpus.read_documents(files), vocabulary, options, shard, num_shards, seed
    )
    count = records.write_atomically(
        path,
        (
            records.serialize(i, options.max_seq_length, options.max_predictions_per_seq)
            for i in stream
        ),
    )
    # Hashed here, in the worker, while the shard is still in the page cache.
    digest = records.file_sha256(path)
    return shard, path, count, os.path.getsize(path), digest, time.perf_counter() - start


def create(
    input_file,
    output_dir,
    options,
    vocab_file=None,
    vocab_size=8192,
    do_lower_case=True,
    num_shards=4,
    output_files=None,
    seed=12345,
    num_workers=None,
    task_index=0,
    num_tasks=1,
):
    """Writes shards, vocab.txt and manifest.json; returns the manifest.

    With `num_tasks` > 1 (one task per machine of an array job) this task
    writes the shards s with s % num_tasks == task_index and a partial
    manifest; `merge_manifests` then writes manifest.json.

    Raises DataError, naming the input, when it holds no documents, fewer
    documents than shards (checked before any worker starts), a trained
    vocabulary is too small (`vocab.train_vocabulary`), or a shard gets no
    instances. A manifest from an earlier run is removed first, so a failed
    set is never taken for a finished one."""
    if not 0 <= task_index < num_tasks:
        raise ConfigError(f"--task_index={task_index} is not in [0, --num_tasks={num_tasks})")
    if num_tasks > 1 and not vocab_file:
        raise ConfigError("--num_tasks > 1 needs --vocab_file: every task must use one vocabulary")
    if vocab_file and not os.path.exists(vocab_file):
        raise ConfigError(f"--vocab_file {vocab_file!r} does not exist")
    if not vocab_file:
        vocab.check_vocab_size(vocab_size)
    files = corpus.input_files(input_file)
    paths = output_files or [
        records.shard_name(output_dir, s, num_shards) for s in range(num_shards)
    ]
    _check_documents(files, len(paths))

    os.makedirs(output_dir, exist_ok=True)
    records.remove_manifest(output_dir)
    if num_tasks > 1:
        records.remove_manifest(output_dir, _task_manifest(task_index, num_tasks))
    local_vocab = os.path.join(output_dir, "vocab.txt")
    if vocab_file:
        if os.path.abspath(vocab_file) != os.path.abspath(local_vocab):
            shutil.copyfile(vocab_file, local_vocab)
    else:
        logging.info("Training a %d-token WordPiece vocabulary on %s", vocab_size, input_file)
        vocab.train_vocabulary(corpus.read_documents(files), output_dir, vocab_size, do_lower_case)
    vocabulary = vocab.Vocabulary(local_vocab, do_lower_case)

    tasks = [
        (files, local_vocab, do_lower_case, options, s, p, len(paths), seed)
        for s, p in enumerate(paths)
        if s % num_tasks == task_index
    ]
    workers = min(num_workers or os.cpu_count() or 1, len(tasks))
    start = time.perf_counter()
    results = {}
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        for shard, path, count, size, digest, seconds in pool.imap_unordered(write_shard, tasks):
            results[shard] = {
                "file": os.path.basename(path),
                "instances": count,
                "bytes": size,
                "sha256": digest,
            }
            print(
                f"[{len(results)}/{len(tasks)}] {os.path.basename(path)}: "
                f"{count} instances in {seconds:.1f} s",
                flush=True,
            )
    _check_instances(files, results, paths)
    manifest = {
        "schema": "google-research/bert",
        "num_shards": len(paths),
        "shards": [results[s] for s in sorted(results)],
        "instances": sum(r["instances"] for r in results.values()),
        "options": dict(vars(options)),
        "random_seed": seed,
        "do_lower_case": do_lower_case,
        "vocab_size": len(vocabulary),
        "vocab_sha256": vocabulary.sha256,
        "input_files": files,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if num_tasks > 1:
        name = _task_manifest(task_index, num_tasks)
        records.write_manifest(output_dir, manifest, name)
        print(f"task {task_index}/{num_tasks}: {manifest['instances']} instances, wrote {name}")
        return manifest
    records.write_manifest(output_dir, manifest)
    print(
        f"{manifest['instances']} instances in {len(tasks)} shards, "
        f"{manifest['seconds']} s, in {output_dir}"
    )
    return manifest


def _task_manifest(task_index, num_tasks):
    return f"manifest-task-{task_index:05d}-of-{num_tasks:05d}.json"


def _check_documents(files, num_shards):
    """Before any work: the input has a document for every shard (shard s
    takes documents s, s + num_shards, ...). Reads at most `num_shards`
    documents, not the whole input."""
    found = sum(1 for _ in itertools.islice(corpus.read_documents(files), num_shards))
    if found == 0:
        raise DataError(
            f"{corpus.describe(files)} holds no documents (only blank lines or nothing)"
        )
    if found < num_shards:
        raise DataError(
            f"{corpus.describe(files)} holds {found} document(s), fewer than the "
            f"{num_shards} shards: {num_shards - found} shard(s) would get no records; "
            f"use --num_shards={found} or fewer"
        )


def _check_instances(files, results, paths):
    """After the workers: every shard written got instances. If not, the
    shards this run wrote are removed and no manifest is written."""
    empty = sorted(s for s, r in results.items() if r["instances"] == 0)
    if not empty:
        return
    for shard in results:
        os.remove(paths[shard])
    total = sum(r["instances"] for r in results.values())
    names = ", ".join(results[s]["file"] for s in empty[:3]) + (", ..." if len(empty) > 3 else "")
    if total == 0:
        raise DataError(
            f"No instances were made from {corpus.describe(files)}: an instance needs two "
            "segments of tokens, from a document of two sentences or more, or from one "
            "and another document of its shard"
        )
    raise DataError(
        f"{len(empty)} of {len(results)} shards got no instances ({names}): "
        f"{total} instances from {corpus.describe(files)} for {len(paths)} shards; "
        "use fewer --num_shards (the shards written were removed)"
    )


def merge_manifests(output_dir, num_tasks):
    """Combines the tasks' partial manifests into manifest.json, checking
    that every task ran with the same settings and every shard is there."""
    partials = []
    for task in range(num_tasks):
        name = _task_manifest(task, num_tasks)
        partial = records.read_manifest(output_dir, name)
        if partial is None:
            raise ValueError(f"Task {task} has not finished: no {name} in {output_dir}")
        partials.append(partial)
    shared = {k: v for k, v in partials[0].items() if k not in ("shards", "instances", "seconds")}
    for task, partial in enumerate(partials):
        for key, value in shared.items():
            if partial[key] != value:
                raise ValueError(f"Task {task} ran with another {key!r}: {partial[key]!r}")
    shards = sorted((s for p in partials for s in p["shards"]), key=lambda s: s["file"])
    if len(shards) != shared["num_shards"]:
        raise ValueError(f"{len(shards)} shards written, {shared['num_shards']} expected")
    manifest = dict(
        shared,
        shards=shards,
        instances=sum(s["instances"] for s in shards),
        seconds=max(p["seconds"] for p in partials),
    )
    records.write_manifest(output_dir, manifest)
    print(f"{manifest['instances']} instances in {len(shards)} shards, wrote manifest.json")
    return manifest
