"""Corpora to pretraining text: `prepare(inputs, output_dir)` turns MediaWiki
dumps, Parquet, JSONL and plain text (`sources`) into BERT's text format (one
sentence per line, a blank line between documents), ready for
`create_pretraining_data`.

- Sentences are split by sentencex (Wikimedia's segmenter: rules for some
  250 languages inside its package, nothing downloaded, compiled Rust).
- Each input file's format and compression are decided from its content,
  once, before anything is written (`sources.detect`): a file refused stops
  the run before the output folder is made; a file whose name says
  otherwise is read by its content, with a note.
- Input files are processed in parallel processes, each streamed with flat
  memory. Each file's text goes to its own shards (`NNNNN-NAME-KKKKK.txt`,
  about `shard_mb` each), written under `.part` names and renamed once the
  whole file is done; its manifest (`NNNNN-NAME.json`) is written last and
  marks it finished: a restarted run skips finished files and redoes the
  others, and no partial shard ever looks finished. A file cut short or
  corrupt stops the run naming how much of it was read and how many of its
  documents were prepared; its partial shards are removed.
- `dedup` removes exact duplicate documents over the whole run (each kept
  once, where first seen in input order), from the digests each file
  records, rewriting only the shards that hold duplicates.
- `manifest.json` sums the files' counts: documents, skipped by reason,
  sentences, bytes in and out, duplicates removed.
"""

import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import time

import numpy as np

from trainers import atomic, stack
from trainers.bert.data import records
from trainers.bert.data.patterns import match_files
from trainers.bert.data.text import sources
from trainers.bert.errors import ConfigError, DataError

PART = ".part"
MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class Options:
    fmt: str | None = None  # None: by each file's content
    text_column: str = "text"
    language: str = "en"
    shard_mb: float = 128.0
    dedup: bool = False
    report_every: float = 30.0  # seconds between a file's progress lines


def input_files(patterns):
    """Comma-separated globs and folders (every file inside, sorted)."""
    files = []
    for pattern in patterns.split(","):
        pattern = pattern.strip()
        if os.path.isdir(pattern):
            found = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(pattern)
                for name in names
                if not name.startswith(".")
            )
            if not found:
                raise DataError(f"--input={pattern}: the folder holds no files")
            files += found
        elif pattern:
            files += match_files(pattern)
    return files


def prepare(patterns, output_dir, options=Options(), processes=1, log=print):
    """Prepares every input file not finished before; returns the manifest."""
    if options.fmt is not None and options.fmt not in sources.FORMATS:
        raise ConfigError(f"--format={options.fmt!r}: choose one of {', '.join(sources.FORMATS)}")
    files = input_files(patterns)
    # Each file's kind once, here: a file refused is named before any write.
    kinds = {path: sources.detect(path, options.fmt) for path in files}
    require_packages(kinds)  # here: a worker would fail with a traceback
    os.makedirs(output_dir, exist_ok=True)
    _remove_parts(output_dir)  # of a run that was killed
    jobs = [(i, path, output_dir, options, kinds[path]) for i, path in enumerate(files)]
    pending = [job for job in jobs if not os.path.exists(_manifest_path(*job[:3]))]
    if len(pending) < len(jobs):
        log(f"{len(jobs) - len(pending)} of {len(jobs)} input file(s) finished before: skipped")
    for *_, kind in pending:
        if kind.note:
            log(f"note: {kind.note}")
    start, done, read = time.perf_counter(), 0, 0
    try:
        with multiprocessing.get_context("spawn").Pool(max(1, processes)) as pool:
            for result in pool.imap_unordered(_prepare_file, pending):
                done, read = done + 1, read + result["bytes_in"]
                seconds = time.perf_counter() - start
                log(
                    f"[{done}/{len(pending)}] {result['input']}: {result['documents']:,} "
                    f"documents from {result['bytes_in'] / 1e6:.1f} MB in "
                    f"{result['seconds']:.1f} s; {read / 1e6 / seconds:.2f} MB/s in all"
                )
    except BaseException:
        _remove_parts(output_dir)
        raise
    parts = [_read(_manifest_path(*job[:3])) for job in jobs]
    if options.dedup:
        _dedup(output_dir, jobs, parts, log)
    manifest = _merge(parts, options)
    records.write_manifest(output_dir, manifest, MANIFEST)
    return manifest


def require_packages(kinds):
    """Raises `stack.MissingPackage`, naming the [corpus] extra, when a
    package that the input files need is not installed (`kinds`: file ->
    `sources.Kind`): sentencex for every input, mwparserfromhell for
    MediaWiki dumps, pyarrow for Parquet."""
    stack.require("sentencex", ["corpus"], "splitting text into sentences")
    formats = {}
    for path, kind in kinds.items():
        formats.setdefault(kind.format, path)
    for fmt, module, kind in (
        ("wiki", "mwparserfromhell", "a MediaWiki dump"),
        ("parquet", "pyarrow", "Parquet"),
    ):
        if fmt in formats:
            stack.require(module, ["corpus"], f"{formats[fmt]} ({kind})")


def _stem(index, path):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(path))
    return f"{index:05d}-{name}"


def _manifest_path(index, path, output_dir):
    return os.path.join(output_dir, f"{_stem(index, path)}.json")


def _read(path):
    with open(path) as f:
        return json.load(f)


def _remove_parts(output_dir, stem=""):
    """Removes the unfinished files in `output_dir` (of one input: `stem`)."""
    for name in os.listdir(output_dir):
        if name.startswith(stem) and (name.endswith(PART) or atomic.TEMPORARY in name):
            os.remove(os.path.join(output_dir, name))


def _prepare_file(job):
    """One input file -> its shards and manifest (run in a worker)."""
    index, path, output_dir, options, kind = job
    stem = _stem(index, path)
    counts = {"input": path, "documents": 0, "sentences": 0, "bytes_out": 0, "skipped": {}}
    start = time.perf_counter()
    reader = sources.Reader(path, kind, options.text_column)
    try:
        prefix = os.path.join(output_dir, stem)
        shards, digests = _write_parts(reader, prefix, options, counts, start)
    except BaseException as error:
        _remove_parts(output_dir, f"{stem}-")  # none of this file's text may look finished
        if isinstance(error, sources.Unreadable):
            raise DataError(
                f"{error}; the {counts['documents']:,} documents prepared from it are not kept "
                "(a rerun prepares the file again)"
            ) from None
        raise
    for shard in shards:  # the whole file is done: its shards become visible
        name = os.path.join(output_dir, shard["file"])
        counts["bytes_out"] += os.path.getsize(name + PART)
        atomic.replace(name + PART, name)  # fsync'ed, renamed, the folder fsync'ed
    if options.dedup:
        atomic.write_bytes(os.path.join(output_dir, f"{stem}.digests"), b"".join(digests))
    counts.update(
        bytes_in=os.path.getsize(path), shards=shards, seconds=time.perf_counter() - start
    )
    records.write_manifest(output_dir, counts, f"{stem}.json")  # last: the file is finished
    return counts


def _write_parts(reader, prefix, options, counts, start):
    """The documents of `reader`, split into sentences, to `.part` shards
    named after `prefix`; counts them into `counts`. Returns the shards
    ({"file", "documents"}) and, with dedup, each document's digest."""
    import sentencex

    shards, digests, current, size = [], [], [], 0
    last_report = start

    def flush():
        nonlocal current, size
        name = f"{prefix}-{len(shards):05d}.txt"
        with open(name + PART, "w", encoding="utf-8") as f:
            f.write("\n\n".join(current) + "\n")
        shards.append({"file": os.path.basename(name), "documents": len(current)})
        current, size = [], 0

    for document in reader:
        if isinstance(document, str):
            counts["skipped"][document] = counts["skipped"].get(document, 0) + 1
            continue
        sentences = [
            " ".join(s.split())
            for paragraph in document
            for s in sentencex.segment(options.language, paragraph)
        ]
        sentences = [s for s in sentences if s]
        if not sentences:
            counts["skipped"]["empty"] = counts["skipped"].get("empty", 0) + 1
            continue
        text = "\n".join(sentences)
        current.append(text)
        counts["documents"] += 1
        counts["sentences"] += len(sentences)
        size += len(text.encode("utf-8")) + 2
        if options.dedup:
            digests.append(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest())
        if size >= options.shard_mb * 1e6:
            flush()
        now = time.perf_counter()
        if now - last_report >= options.report_every:
            last_report = now
            rate = reader.bytes_read / 1e6 / (now - start)
            print(
                f"  {os.path.basename(reader.path)}: {counts['documents']:,} documents, "
                f"{reader.bytes_read / 1e6:.0f} MB read ({rate:.2f} MB/s)",
                flush=True,
            )
    if current:
        flush()
    return shards, digests


def _dedup(output_dir, jobs, parts, log):
    """Removes every document whose digest was seen earlier (input order)."""
    digests = []
    for index, path, *_ in jobs:
        name = os.path.join(output_dir, f"{_stem(index, path)}.digests")
        if not os.path.exists(name):
            raise DataError(
                f"{name} is missing: {path} was prepared without --dedup; prepare into a new "
                "--output_dir to remove duplicates"
            )
        with open(name, "rb") as f:
            digests.append(np.frombuffer(f.read(), dtype=np.uint64))
    every = np.concatenate(digests) if digests else np.zeros(0, np.uint64)
    _, first = np.unique(every, return_index=True)
    keep = np.zeros(len(every), bool)
    keep[first] = True
    removed, offset = 0, 0
    for (index, path, *_), part, own in zip(jobs, parts, digests):
        kept = keep[offset : offset + len(own)]
        offset += len(own)
        if kept.all():
            continue
        position = 0
        for shard in part["shards"]:
            mask = kept[position : position + shard["documents"]]
            position += shard["documents"]
            if mask.all():
                continue
            name = os.path.join(output_dir, shard["file"])
            with open(name, encoding="utf-8") as f:
                documents = f.read().rstrip("\n").split("\n\n")
            gone = [d for d, k in zip(documents, mask) if not k]
            part["sentences"] -= sum(d.count("\n") + 1 for d in gone)
            documents = [d for d, k in zip(documents, mask) if k]
            atomic.write_bytes(name, ("\n\n".join(documents) + "\n").encode("utf-8"))
            shard["documents"] = len(documents)
        dropped = int((~kept).sum())
        removed += dropped
        part["duplicates"] = part.get("duplicates", 0) + dropped
        part["documents"] -= dropped
        part["bytes_out"] = sum(
            os.path.getsize(os.path.join(output_dir, s["file"])) for s in part["shards"]
        )
        stem = _stem(index, path)
        atomic.write_bytes(os.path.join(output_dir, f"{stem}.digests"), own[kept].tobytes())
        records.write_manifest(output_dir, part, f"{stem}.json")
    log(f"removed {removed:,} duplicate document(s)")


def _merge(parts, options):
    skipped = {}
    for part in parts:
        for reason, n in part["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    total = lambda key: sum(p.get(key, 0) for p in parts)  # noqa: E731
    return {
        "inputs": [p["input"] for p in parts],
        "documents": total("documents"),
        "sentences": total("sentences"),
        "bytes_in": total("bytes_in"),
        "bytes_out": total("bytes_out"),
        "duplicates_removed": total("duplicates"),
        "skipped": skipped,
        "shards": [s["file"] for p in parts for s in p["shards"]],
        "segmenter": f"sentencex ({options.language})",
    }
