"""Create BERT pretraining TFRecords from text: `create(...)` writes the
shards in parallel processes, each atomically, with a manifest.json beside
them that the trainer checks. The command line is `__main__.py`."""

import multiprocessing
import os
import shutil
import time

from absl import logging

from trainers.bert.data import corpus, instances, records, vocab


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
    return shard, path, count, os.path.getsize(path), time.perf_counter() - start


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
    manifest; `merge_manifests` then writes manifest.json."""
    if not 0 <= task_index < num_tasks:
        raise ValueError(f"--task_index={task_index} is not in [0, --num_tasks={num_tasks})")
    if num_tasks > 1 and not vocab_file:
        raise ValueError("--num_tasks > 1 needs --vocab_file: every task must use one vocabulary")
    files = corpus.input_files(input_file)
    os.makedirs(output_dir, exist_ok=True)
    local_vocab = os.path.join(output_dir, "vocab.txt")
    if vocab_file:
        if not os.path.exists(vocab_file):
            raise ValueError(f"--vocab_file {vocab_file!r} does not exist")
        if os.path.abspath(vocab_file) != os.path.abspath(local_vocab):
            shutil.copyfile(vocab_file, local_vocab)
    else:
        logging.info("Training a %d-token WordPiece vocabulary on %s", vocab_size, input_file)
        vocab.train_vocabulary(corpus.read_documents(files), output_dir, vocab_size, do_lower_case)
    vocabulary = vocab.Vocabulary(local_vocab, do_lower_case)

    paths = output_files or [
        records.shard_name(output_dir, s, num_shards) for s in range(num_shards)
    ]
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
        for shard, path, count, size, seconds in pool.imap_unordered(write_shard, tasks):
            results[shard] = {"file": os.path.basename(path), "instances": count, "bytes": size}
            print(
                f"[{len(results)}/{len(tasks)}] {os.path.basename(path)}: "
                f"{count} instances in {seconds:.1f} s",
                flush=True,
            )
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
        name = f"manifest-task-{task_index:05d}-of-{num_tasks:05d}.json"
        records.write_manifest(output_dir, manifest, name)
        print(f"task {task_index}/{num_tasks}: {manifest['instances']} instances, wrote {name}")
        return manifest
    records.write_manifest(output_dir, manifest)
    print(
        f"{manifest['instances']} instances in {len(tasks)} shards, "
        f"{manifest['seconds']} s, in {output_dir}"
    )
    return manifest


def merge_manifests(output_dir, num_tasks):
    """Combines the tasks' partial manifests into manifest.json, checking
    that every task ran with the same settings and every shard is there."""
    partials = []
    for task in range(num_tasks):
        name = f"manifest-task-{task:05d}-of-{num_tasks:05d}.json"
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
