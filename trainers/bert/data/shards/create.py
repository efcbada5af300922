"""Create BERT pretraining TFRecords from text: `create(...)` writes the
shards in parallel processes (small input: in this one), each atomically,
with a manifest.json beside them that the trainer checks. The command line
is `__main__.py`."""

import contextlib
import itertools
import multiprocessing
import os
import re
import time

from trainers import atomic
from trainers.bert.data import records
from trainers.bert.data.shards import corpus, instances, vocab
from trainers.bert.errors import ConfigError, DataError

# Less input text than this is written by one process, the caller's (`_small`).
SMALL_INPUT_BYTES = 4 << 20


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
    overwrite=False,
):
    """Writes shards, vocab.txt and manifest.json; returns the manifest.

    With `num_tasks` > 1 (one task per machine of an array job) this task
    writes the shards s with s % num_tasks == task_index and a partial
    manifest; `merge_manifests` then writes manifest.json.

    Everything is checked before `output_dir` is touched: the settings, the
    vocabulary file (its format, its casing against `do_lower_case`), the
    input (plain text, a document for every shard) and `output_dir` itself.
    An `output_dir` holding files of another run (shards this run would not
    write, a manifest made with other settings, another array job's
    partial manifests, temporary files of other names) raises ConfigError
    naming them, unless `overwrite`: then they are removed first. The
    manifest goes first, the new one is written last, so a set replaced
    half-way never looks finished. Re-running the same settings into their
    own folder (after an interruption) is no other run: temporary files an
    interrupted run left under this task's names are removed.

    Raises DataError, naming the input, when it holds no documents, fewer
    documents than shards (checked before any worker starts), a trained
    vocabulary is too small (`vocab.train_vocabulary`), or a shard gets no
    instances."""
    _check_counts(task_index, num_tasks, vocab_file, output_files, num_shards, num_workers)
    options.check_room()
    vocabulary = _given_vocabulary(vocab_file, vocab_size, do_lower_case)
    files = corpus.input_files(input_file)
    empty = corpus.check_text(files)
    paths = output_files or [
        records.shard_name(output_dir, s, num_shards) for s in range(num_shards)
    ]
    if len(set(map(os.path.abspath, paths))) < len(paths):
        raise ConfigError(f"--output_file names a shard twice: {','.join(paths)}")
    _check_documents(files, len(paths))
    settings = _settings(paths, options, seed, do_lower_case, files, vocabulary, vocab_size)
    mine = [p for s, p in enumerate(paths) if s % num_tasks == task_index]
    earlier = _earlier_run(output_dir, paths, mine, settings, task_index, num_tasks)
    if earlier.others and not overwrite:
        raise ConfigError(
            f"{output_dir} holds {earlier.describe()}; write to another --output_dir, or "
            "add --overwrite to replace them"
        )

    _clear(output_dir, earlier, task_index, num_tasks)
    if empty:
        print(corpus.empty_note(empty, files), flush=True)
    note = options.masking_note()
    if note:
        print(note, flush=True)
    local_vocab = _local_vocabulary(output_dir, vocab_file, vocab_size, do_lower_case, files)
    vocabulary = vocab.Vocabulary(local_vocab, do_lower_case)

    tasks = [
        (files, local_vocab, do_lower_case, options, s, p, len(paths), seed)
        for s, p in enumerate(paths)
        if s % num_tasks == task_index
    ]
    start = time.perf_counter()
    workers = num_workers or (1 if _small(files) else os.cpu_count() or 1)
    results = _write_shards(tasks, min(workers, len(tasks)))
    _check_instances(files, results, paths)
    manifest = {
        "schema": SCHEMA,
        "num_shards": len(paths),
        "shards": [results[s] for s in sorted(results)],
        "instances": sum(r["instances"] for r in results.values()),
        "options": dict(vars(options)),
        "random_seed": seed,
        "do_lower_case": do_lower_case,
        "vocab_size": len(vocabulary),
        "vocab_sha256": vocabulary.sha256,
        "trained_vocab_size": None if vocab_file else vocab_size,
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


def _check_counts(task_index, num_tasks, vocab_file, output_files, num_shards, num_workers):
    if not 0 <= task_index < num_tasks:
        raise ConfigError(f"--task_index={task_index} is not in [0, --num_tasks={num_tasks})")
    if num_tasks > 1 and not vocab_file:
        raise ConfigError("--num_tasks > 1 needs --vocab_file: every task must use one vocabulary")
    if output_files is None and num_shards < 1:
        raise ConfigError(f"--num_shards={num_shards}: give 1 or more")
    if num_workers is not None and num_workers < 1:
        raise ConfigError(f"--num_workers={num_workers}: give 1 or more (or leave it unset)")


def _given_vocabulary(vocab_file, vocab_size, do_lower_case):
    """The given vocabulary, checked (format, casing), or None when one is
    to be trained (its size checked)."""
    if not vocab_file:
        vocab.check_vocab_size(vocab_size)
        return None
    if not os.path.exists(vocab_file):
        raise ConfigError(f"--vocab_file {vocab_file!r} does not exist")
    vocabulary = vocab.Vocabulary(vocab_file, do_lower_case)
    vocab.check_casing(vocabulary.tokens, do_lower_case, vocab_file, "--do_lower_case")
    return vocabulary


def _clear(output_dir, earlier, task_index, num_tasks):
    """Readies `output_dir`: the manifest removed first (the folder no longer
    looks finished), then another run's files (--overwrite) and the
    temporary files an interrupted run left."""
    os.makedirs(output_dir, exist_ok=True)
    records.remove_manifest(output_dir)
    if num_tasks > 1:
        records.remove_manifest(output_dir, _task_manifest(task_index, num_tasks))
    for name in earlier.others + earlier.temporaries:
        _remove(os.path.join(output_dir, name))
    if earlier.others:
        print(f"removed {earlier.describe()} (--overwrite)", flush=True)
    if earlier.temporaries:
        print(
            f"removed {_count(earlier.temporaries, 'temporary file')} an interrupted run "
            f"left ({_names(earlier.temporaries)})",
            flush=True,
        )


def _local_vocabulary(output_dir, vocab_file, vocab_size, do_lower_case, files):
    """output_dir/vocab.txt: the given one copied, or one trained on `files`."""
    local_vocab = os.path.join(output_dir, "vocab.txt")
    if vocab_file:
        if os.path.abspath(vocab_file) != os.path.abspath(local_vocab):
            _copy_atomically(vocab_file, local_vocab)
        return local_vocab
    print(
        f"training a WordPiece vocabulary of up to {vocab_size} tokens on {corpus.describe(files)}",
        flush=True,
    )
    vocab.train_vocabulary(
        corpus.read_documents(files), output_dir, vocab_size, do_lower_case, report=print
    )
    return local_vocab


def _small(files):
    """Whether the input is local text of under `SMALL_INPUT_BYTES` (the
    built-in corpus included): each shard then takes less time than starting
    a worker process, which imports TensorFlow (seconds)."""
    local = [f for f in files if not f.startswith("builtin:")]
    if any("://" in f for f in local):
        return False
    return sum(os.path.getsize(f) for f in local) < SMALL_INPUT_BYTES


def _write_shards(tasks, workers):
    """{shard: its manifest entry}, the shards written by `workers`
    processes (one: this process), each reported as it ends."""
    results = {}
    with contextlib.ExitStack() as stack:
        if workers == 1:
            written = map(write_shard, tasks)
        else:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            written = pool.imap_unordered(write_shard, tasks)
        for shard, path, count, size, digest, seconds in written:
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
    return results


SCHEMA = "google-research/bert"
# Partial manifests of an array job's tasks.
_PARTIAL = re.compile(r"manifest-task-\d{5}-of-(\d{5})\.json")
# A manifest's settings, in the order a difference is named, with the flag
# that sets each. Shards, counts, sizes and times are results, not settings.
_FLAGS = {
    "num_shards": "--num_shards",
    "shard_files": "--output_file",
    "random_seed": "--random_seed",
    "do_lower_case": "--do_lower_case",
    "input_files": "--input_file",
    "vocab_sha256": "--vocab_file",
    "trained_vocab_size": "--vocab_size",
}


def _settings(paths, options, seed, do_lower_case, files, vocabulary, vocab_size):
    """What makes this run's data, as its manifest records it: another
    manifest in the folder with other values is another run's."""
    settings = {
        "num_shards": len(paths),
        "shard_files": sorted(os.path.basename(p) for p in paths),
        "options": dict(vars(options)),
        "random_seed": seed,
        "do_lower_case": do_lower_case,
        "input_files": [_absolute(f) for f in files],
        "trained_vocab_size": None if vocabulary else vocab_size,
    }
    if vocabulary:  # a given one; a trained vocabulary differs on every run
        settings["vocab_sha256"] = vocabulary.sha256
    return settings


def _absolute(name):
    return name if name.startswith("builtin:") or "://" in name else os.path.abspath(name)


def _difference(manifest, settings, partial=False):
    """The first setting `manifest` records another value of, as "--flag=
    old, not new", or None. Keys an older manifest lacks are not compared."""
    if manifest.get("schema") != SCHEMA:
        return "not the data tool's"
    recorded = dict(manifest)
    recorded["input_files"] = [_absolute(f) for f in manifest.get("input_files", [])]
    if not partial and isinstance(manifest.get("shards"), list):
        recorded["shard_files"] = sorted(
            s.get("file") for s in manifest["shards"] if isinstance(s, dict)
        )
    order = ["num_shards", "shard_files"]
    order += [f"options.{k}" for k in settings["options"]]
    order += ["random_seed", "do_lower_case", "input_files", "vocab_sha256", "trained_vocab_size"]
    for key in order:
        if key.startswith("options."):
            name = key.split(".", 1)[1]
            old = recorded.get("options", {}).get(name, settings["options"][name])
            new, flag = settings["options"][name], f"--{name}"
        else:
            if key not in recorded or key not in settings:
                continue
            old, new, flag = recorded[key], settings[key], _FLAGS[key]
        if old != new:
            if key == "vocab_sha256":
                return "made with another --vocab_file"
            if key == "trained_vocab_size":
                old = "a --vocab_file" if old is None else f"--vocab_size={old}"
                new = "a --vocab_file" if new is None else f"--vocab_size={new}"
                return f"made with {old}, not {new}"
            if key in ("shard_files", "input_files"):
                return f"made with other {flag} files ({_names(old)})"
            return f"made with {flag}={old}, not {new}"
    return None


class _Earlier:
    """What an output folder holds of earlier runs: `others` (names of
    another run's files, to refuse or remove), `temporaries` (this task's
    temporary files an interrupted run of these settings left)."""

    def __init__(self):
        self.others, self.temporaries, self.reasons = [], [], []

    def describe(self):
        return ", ".join(self.reasons)


def _earlier_run(output_dir, paths, mine, settings, task_index, num_tasks):
    earlier = _Earlier()
    try:
        names = sorted(os.listdir(output_dir))
    except FileNotFoundError:
        return earlier
    except NotADirectoryError:
        raise ConfigError(f"--output_dir {output_dir!r} is a file, not a folder") from None
    folder = os.path.abspath(output_dir)
    ours = {os.path.basename(p) for p in paths if os.path.dirname(os.path.abspath(p)) == folder}
    owned = {os.path.basename(p) for p in mine}
    shared = {records.MANIFEST, "vocab.txt"}
    if num_tasks > 1:
        owned.add(_task_manifest(task_index, num_tasks))
    else:
        owned |= shared
    listed = set()
    for name in names:
        if name != records.MANIFEST and not _PARTIAL.fullmatch(name):
            continue
        try:
            manifest = records.read_manifest(output_dir, name)
            partial = name != records.MANIFEST
            differs = _difference(manifest, settings, partial)
            if partial and int(_PARTIAL.fullmatch(name).group(1)) != num_tasks:
                differs = differs or f"of --num_tasks={int(_PARTIAL.fullmatch(name).group(1))}"
            shards = manifest.get("shards") if isinstance(manifest.get("shards"), list) else []
            listed |= {s["file"] for s in shards if isinstance(s, dict) and "file" in s}
        except DataError:
            differs = "unreadable"
        if differs:
            earlier.others.append(name)
            earlier.reasons.append(f"{name} of another run ({differs})")
    stale = [n for n in names if (n.endswith(".tfrecord") or n in listed) and n not in ours]
    if stale:
        earlier.others += stale
        earlier.reasons.append(
            f"{_count(stale, 'shard')} this run does not write ({_names(stale)})"
        )
    leftovers = []
    for name in names:
        target = atomic.target_of(name)
        if target is None:
            continue
        if target in owned:
            earlier.temporaries.append(name)
        elif not (target in ours or target in shared or _PARTIAL.fullmatch(target)):
            leftovers.append(name)  # other tasks' files are theirs to clean
    if leftovers:
        earlier.others += leftovers
        earlier.reasons.append(
            f"{_count(leftovers, 'temporary file')} of another interrupted run "
            f"({_names(leftovers)})"
        )
    return earlier


def _count(names, what):
    return f"{len(names)} {what}{'' if len(names) == 1 else 's'}"


def _names(names, shown=3):
    names = [os.path.basename(n) for n in names]
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass  # another task of the array job removed it


def _copy_atomically(source, target):
    """`source` to `target` (other tasks of an array job may be reading
    it: atomically, and not rewritten where it already holds the bytes)."""
    with open(source, "rb") as f:
        data = f.read()
    if os.path.exists(target):
        with open(target, "rb") as f:
            if f.read() == data:
                return
    atomic.write_bytes(target, data)


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
            raise ValueError(
                f"Task {task} has not finished: no {name} in {output_dir}; run it "
                f"(--task_index={task} --num_tasks={num_tasks}), then merge again"
            )
        partials.append(partial)
    shared = {k: v for k, v in partials[0].items() if k not in ("shards", "instances", "seconds")}
    for task, partial in enumerate(partials):
        for key, value in shared.items():
            if partial.get(key) != value:
                raise ValueError(
                    f"Task {task} ran with another {key!r} ({partial.get(key)!r}, task 0: "
                    f"{value!r}): run every task with the same flags, then merge again"
                )
    shards = sorted((s for p in partials for s in p["shards"]), key=lambda s: s["file"])
    if len(shards) != shared["num_shards"]:
        raise ValueError(
            f"{len(shards)} shards written, {shared['num_shards']} expected: the tasks' "
            "manifests do not cover every shard; run every task, then merge again"
        )
    manifest = dict(
        shared,
        shards=shards,
        instances=sum(s["instances"] for s in shards),
        seconds=max(p["seconds"] for p in partials),
    )
    records.write_manifest(output_dir, manifest)
    print(f"{manifest['instances']} instances in {len(shards)} shards, wrote manifest.json")
    return manifest
