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
- The unit of parallel work (a job) is an input file, or a stream range of
  a multistream bz2 MediaWiki dump: such a dump (Wikipedia's
  `...-multistream.xml.bz2`, one file of 20+ GB) is cut into ranges of
  whole bz2 streams of about `range_mb` each, at the stream offsets of its
  index (`index`, else Wikimedia's `...-multistream-index.txt.bz2` beside
  it) or at stream starts found in the file (`streams`). The ranges depend
  on the file alone, so any number of processes writes the same shards
  and manifest; a dump of one stream, or one smaller than a range, is one
  job. An index of another dump stops the run before the output folder is
  made; an index among the inputs is not read as text.
- Jobs run in parallel processes (in this one with `processes=1`), each
  streamed with flat memory. Each job's text goes to its own shards
  (`NNNNN-NAME-KKKKK.txt`; a range's `NNNNN-NAME-rRRRRR-KKKKK.txt`, about
  `shard_mb` each), written under `.part` names and renamed once the
  job is done; its manifest (`NNNNN-NAME.json`, `NNNNN-NAME-rRRRRR.json`
  with the range's bytes) is written last and marks it finished: a
  restarted run skips finished jobs and redoes the others, and no partial
  shard ever looks finished; finished ranges of another split (another
  `range_mb`) are refused. A file or range cut short or corrupt stops the
  run naming how much of it was read and how many of its documents were
  prepared; its partial shards are removed, the jobs finished are kept.
- `dedup` removes exact duplicate documents over the whole run (each kept
  once, where first seen in input order), from the digests each file
  records, rewriting only the shards that hold duplicates.
- `manifest.json` sums the jobs' counts: documents, skipped by reason,
  sentences, bytes in and out, duplicates removed.
"""

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import re
import time

import numpy as np

from trainers import atomic, stack
from trainers.bert.data import records
from trainers.bert.data.patterns import match_files
from trainers.bert.data.text import sources, streams
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
    report_every: float = 30.0  # seconds between a job's progress lines
    range_mb: float = 64.0  # a multistream dump's ranges, compressed
    index: str | None = None  # the multistream dump's index (default: the one beside it)


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of parallel work: the input file `path` (the run's
    `position`-th), or its stream range `part` (the `number`-th)."""

    position: int
    path: str
    output_dir: str
    options: Options
    kind: sources.Kind
    part: streams.Range | None = None
    number: int = 0

    @property
    def stem(self):
        """What its output files are named after."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(self.path))
        stem = f"{self.position:05d}-{name}"
        return stem if self.part is None else f"{stem}-r{self.number:05d}"

    @property
    def manifest(self):
        return os.path.join(self.output_dir, f"{self.stem}.json")

    @property
    def label(self):
        """The job in progress lines: the file, and a range's bytes."""
        return self.path if self.part is None else f"{self.path} {self.part.describe()}"


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
    """Prepares every input file (every range of a multistream dump) not
    finished before; returns the manifest."""
    if options.fmt is not None and options.fmt not in sources.FORMATS:
        raise ConfigError(f"--format={options.fmt!r}: choose one of {', '.join(sources.FORMATS)}")
    if options.range_mb <= 0:
        raise ConfigError(f"--range_mb={options.range_mb}: must be above 0")
    if options.index is not None and not os.path.isfile(options.index):
        raise ConfigError(f"--index={options.index}: no such file")
    files = input_files(patterns)
    # Each file's kind once, here: a file refused is named before any write.
    kinds = {path: sources.detect(path, options.fmt) for path in files}
    require_packages(kinds)  # here: a worker would fail with a traceback
    ranges, indexes = _split_dumps(kinds, options, log)  # an index refused: before any write
    files = [path for path in files if path not in indexes]
    jobs = _jobs(files, kinds, ranges, output_dir, options)
    os.makedirs(output_dir, exist_ok=True)
    _remove_parts(output_dir)  # of a run that was killed
    _refuse_another_split(jobs, output_dir)
    pending = [job for job in jobs if not os.path.exists(job.manifest)]
    if len(pending) < len(jobs):
        what = "input file(s)" + (" and stream range(s)" if ranges else "")
        log(f"{len(jobs) - len(pending)} of {len(jobs)} {what} finished before: skipped")
    for path in dict.fromkeys(job.path for job in pending):
        if kinds[path].note:
            log(f"note: {kinds[path].note}")
    start, done, read = time.perf_counter(), 0, 0
    try:
        for result in _run(pending, processes):
            done, read = done + 1, read + result["bytes_in"]
            seconds = time.perf_counter() - start
            log(
                f"[{done}/{len(pending)}] {result['label']}: {result['documents']:,} "
                f"documents from {result['bytes_in'] / 1e6:.1f} MB in "
                f"{result['seconds']:.1f} s; {read / 1e6 / seconds:.2f} MB/s in all"
            )
    except BaseException:
        _remove_parts(output_dir)
        raise
    parts = [_read(job.manifest) for job in jobs]
    if options.dedup:
        _dedup(jobs, parts, log)
    manifest = _merge(parts, options)
    records.write_manifest(output_dir, manifest, MANIFEST)
    return manifest


def _run(jobs, processes):
    """Yields each job's counts as it finishes: in worker processes, or in
    this one where one process is asked for or one job is left."""
    if processes <= 1 or len(jobs) <= 1:
        yield from map(_prepare_job, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        yield from pool.imap_unordered(_prepare_job, jobs)


def _split_dumps(kinds, options, log):
    """The stream ranges of each multistream bz2 dump that is cut ({path:
    [Range]}), and the index files used (which are not read as text)."""
    dumps = [path for path, kind in kinds.items() if _splittable(kind)]
    if options.index is not None and len(dumps) != 1:
        said = f"{len(dumps)} are given" if dumps else "none is given"
        raise ConfigError(
            f"--index={options.index}: the index of one bz2 MediaWiki dump, and {said}"
            + ("; leave it out to use the index beside each dump" if dumps else "")
        )
    ranges, indexes = {}, set()
    for path in dumps:
        index = options.index or streams.index_beside(path)
        start = time.perf_counter()
        try:
            found = streams.split(path, int(options.range_mb * 1e6), index, log)
        except DataError as error:
            if options.index or index is None:
                raise
            raise DataError(  # found by its name: the user may not know it is used
                f"{error} (found beside the dump by its name; move it away to cut the dump at "
                "the stream starts found in it)"
            ) from None
        if index is not None:
            indexes.add(index)
        if len(found) > 1:
            ranges[path] = found
            where = f"the offsets of its index {index}" if index else "bz2 stream starts in it"
            log(
                f"{path}: {len(found)} ranges of about {options.range_mb:g} MB, cut at {where} "
                f"({time.perf_counter() - start:.1f} s)"
            )
    for index in sorted(indexes & set(kinds)):
        log(f"note: {index}: the index of a dump, used to cut it, not read as text")
    return ranges, indexes


def _splittable(kind):
    return kind.format == "wiki" and kind.compression == "bz2"


def _jobs(files, kinds, ranges, output_dir, options):
    jobs = []
    for i, path in enumerate(files):
        whole = Job(i, path, output_dir, options, kinds[path])
        if path not in ranges:
            jobs.append(whole)
        for number, part in enumerate(ranges.get(path, ())):
            jobs.append(dataclasses.replace(whole, part=part, number=number))
    return jobs


def _refuse_another_split(jobs, output_dir):
    """Raises DataError where the output holds a job finished by an earlier
    run that cut its input otherwise (another `range_mb`, or the file has
    changed): the shards of the two would overlap."""
    planned = {os.path.basename(job.manifest): job for job in jobs}
    inputs = {dataclasses.replace(job, part=None).stem: job.path for job in jobs}
    for name in sorted(os.listdir(output_dir)):
        stem = _input_stem(name, inputs)
        if stem is None:
            continue  # no manifest of this run's inputs
        job = planned.get(name)
        finished = _read(os.path.join(output_dir, name)).get("range")
        if job is not None and finished == ([job.part.start, job.part.end] if job.part else None):
            continue
        path, options = inputs[stem], jobs[0].options
        if finished:
            said = f"bytes {finished[0]:,}-{finished[1]:,} of {path}, finished by an earlier run"
            said += " that cut the file otherwise"
            advice = "rerun with that run's --range_mb"
        else:
            said = f"all of {path}, finished whole by an earlier run"
            advice = (
                f"rerun with --range_mb={math.ceil(os.path.getsize(path) / 1e6)} to keep it whole"
            )
        cut = sum(1 for j in jobs if j.path == path)
        raise DataError(
            f"{os.path.join(output_dir, name)}: {said}; this run cuts it into {cut} range(s) of "
            f"about {options.range_mb:g} MB: {advice}, or prepare into a new --output_dir"
        )


_RANGE_MANIFEST = re.compile(r"(.+?)-r\d{5}\.json")


def _input_stem(name, stems):
    """The stem (of `stems`) of the input whose manifest, whole or of a
    range, is named `name`; None for any other file."""
    if name.endswith(".json") and name[: -len(".json")] in stems:
        return name[: -len(".json")]
    match = _RANGE_MANIFEST.fullmatch(name)
    return match.group(1) if match and match.group(1) in stems else None


def require_packages(kinds):
    """Raises `stack.MissingPackage`, naming the [corpus] extra, when a
    package that the input files need is not installed (`kinds`: file ->
    `sources.Kind`): sentencex for every input, pyarrow for Parquet
    (MediaWiki markup needs nothing beyond Python: `wikitext`)."""
    stack.require("sentencex", ["corpus"], "splitting text into sentences")
    parquet = next((path for path, kind in kinds.items() if kind.format == "parquet"), None)
    if parquet:
        stack.require("pyarrow", ["corpus"], f"{parquet} (Parquet)")


def _read(path):
    with open(path) as f:
        return json.load(f)


def _remove_parts(output_dir, stem=""):
    """Removes the unfinished files in `output_dir` (of one input: `stem`)."""
    for name in os.listdir(output_dir):
        if name.startswith(stem) and (name.endswith(PART) or atomic.TEMPORARY in name):
            os.remove(os.path.join(output_dir, name))


def _prepare_job(job):
    """One input file or range -> its shards and manifest (in a worker)."""
    output_dir, options, stem, part = job.output_dir, job.options, job.stem, job.part
    counts = {"input": job.path, "documents": 0, "sentences": 0, "bytes_out": 0, "skipped": {}}
    if part is not None:
        counts["range"] = [part.start, part.end]
    start = time.perf_counter()
    reader = sources.Reader(job.path, job.kind, options.text_column, part)
    try:
        prefix = os.path.join(output_dir, stem)
        shards, digests = _write_parts(reader, job.label, prefix, options, counts, start)
    except BaseException as error:
        _remove_parts(output_dir, f"{stem}-")  # none of this job's text may look finished
        if isinstance(error, sources.Unreadable):
            what = "it" if part is None else "that range"
            raise DataError(
                f"{error}; the {counts['documents']:,} documents prepared from {what} are not "
                f"kept (a rerun prepares {'the file' if part is None else 'it'} again)"
            ) from None
        raise
    for shard in shards:  # the whole job is done: its shards become visible
        name = os.path.join(output_dir, shard["file"])
        counts["bytes_out"] += os.path.getsize(name + PART)
        atomic.replace(name + PART, name)  # fsync'ed, renamed, the folder fsync'ed
    if options.dedup:
        atomic.write_bytes(os.path.join(output_dir, f"{stem}.digests"), b"".join(digests))
    size = os.path.getsize(job.path) if part is None else part.end - part.start
    counts.update(bytes_in=size, shards=shards, seconds=time.perf_counter() - start)
    records.write_manifest(output_dir, counts, f"{stem}.json")  # last: the job is finished
    return {**counts, "label": job.label}


def _write_parts(reader, label, prefix, options, counts, start):
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
                f"  {label}: {counts['documents']:,} documents, "
                f"{reader.bytes_read / 1e6:.0f} MB read ({rate:.2f} MB/s)",
                flush=True,
            )
    if current:
        flush()
    return shards, digests


def _dedup(jobs, parts, log):
    """Removes every document whose digest was seen earlier (input order)."""
    digests = []
    for job in jobs:
        name = os.path.join(job.output_dir, f"{job.stem}.digests")
        if not os.path.exists(name):
            raise DataError(
                f"{name} is missing: {job.label} was prepared without --dedup; prepare into a "
                "new --output_dir to remove duplicates"
            )
        with open(name, "rb") as f:
            digests.append(np.frombuffer(f.read(), dtype=np.uint64))
    every = np.concatenate(digests) if digests else np.zeros(0, np.uint64)
    _, first = np.unique(every, return_index=True)
    keep = np.zeros(len(every), bool)
    keep[first] = True
    removed, offset = 0, 0
    for job, part, own in zip(jobs, parts, digests):
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
            name = os.path.join(job.output_dir, shard["file"])
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
            os.path.getsize(os.path.join(job.output_dir, s["file"])) for s in part["shards"]
        )
        atomic.write_bytes(os.path.join(job.output_dir, f"{job.stem}.digests"), own[kept].tobytes())
        records.write_manifest(job.output_dir, part, os.path.basename(job.manifest))
    log(f"removed {removed:,} duplicate document(s)")


def _merge(parts, options):
    skipped = {}
    for part in parts:
        for reason, n in part["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    total = lambda key: sum(p.get(key, 0) for p in parts)  # noqa: E731
    return {
        "inputs": list(dict.fromkeys(p["input"] for p in parts)),  # a dump's ranges: once
        "documents": total("documents"),
        "sentences": total("sentences"),
        "bytes_in": total("bytes_in"),
        "bytes_out": total("bytes_out"),
        "duplicates_removed": total("duplicates"),
        "skipped": skipped,
        "shards": [s["file"] for p in parts for s in p["shards"]],
        "segmenter": f"sentencex ({options.language})",
    }
