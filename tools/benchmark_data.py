"""Throughput of pretraining-data creation and of the input pipeline.

    python tools/benchmark_data.py                 # about 3 minutes on 2 cores

Measures, in one run on the same text (the built-in corpus repeated to
`--megabytes`):
- raw WordPiece encoding with `tokenizers`, one thread: the limit;
- the creation tool with 1 process and with 2 (MB of text per second, per
  core, and the ratio to the raw encoding; dupe_factor 1);
- the input pipeline (sequences/s at length 128) against what a small BERT
  (keras-hub `BertBackbone`, 4 layers, hidden 256, with a masked-LM head)
  consumes per second training on the same machine;
- `pipeline.validate` on `--checksum_megabytes` of shards (copies of the
  tool's records, in a temporary folder), which checks every shard's SHA-256
  against manifest.json: MB/s and seconds per GB (extrapolated), with the
  files in the page cache and read back from disk, against a size-only check.

    python tools/benchmark_data.py --checksum_only  # that last one alone, about 20 s
"""

import json
import os
import statistics
import tempfile
import time

from trainers import stack
from trainers.bert import cli

stack.check_trainer()  # gin, keras-hub...: one line naming what to install
cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one tokenizer thread: per-core figures

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from trainers.bert.data import patterns, records  # noqa: E402
from trainers.bert.data.input import pipeline  # noqa: E402
from trainers.bert.data.shards import builtin, corpus, create, instances, vocab  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_float("megabytes", 5.0, "Size of the text to process.")
flags.DEFINE_integer("batch_size", 64, "Pipeline and model batch size.")
flags.DEFINE_string("json_out", None, "Also write the results here.")
flags.DEFINE_float("checksum_megabytes", 200.0, "Shards that validate() checksums.")
flags.DEFINE_bool("checksum_only", False, "Measure only validate()'s checksum verification.")


def make_text(folder, megabytes):
    documents = "\n\n".join("\n".join(d) for d in corpus.builtin_documents()) + "\n\n"
    copies = max(1, int(megabytes * 1e6 / len(documents.encode())))
    path = os.path.join(folder, "corpus.txt")
    with open(path, "w") as f:
        f.write(documents * copies)
    return path, os.path.getsize(path) / 1e6


def raw_encoding_rate(path, vocab_file, megabytes):
    v = vocab.Vocabulary(vocab_file)
    sentences = [s for d in corpus.read_documents([path]) for s in d]
    start = time.perf_counter()
    for i in range(0, len(sentences), 1000):
        v.encode(sentences[i : i + 1000])
    return megabytes / (time.perf_counter() - start)


def creation_rate(path, vocab_file, folder, workers, megabytes):
    start = time.perf_counter()
    create.create(
        path,
        folder,
        instances.Options(dupe_factor=1),
        vocab_file=vocab_file,
        num_shards=2 * workers,
        num_workers=workers,
    )
    return megabytes / (time.perf_counter() - start)


def pipeline_rate(folder, batch_size, batches=200):
    files = patterns.match_files(os.path.join(folder, "*.tfrecord"))
    names = pipeline.validate(files, 128, 20)
    iterator = iter(pipeline.make_dataset(files, 128, 20, batch_size, names=names))
    for _ in range(10):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def model_rate(vocab_size, batch_size, steps=5):
    """Sequences/s a small BERT trains at: what the trainer consumes."""
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab_size,
        num_layers=4,
        num_heads=4,
        hidden_dim=256,
        intermediate_dim=1024,
        max_sequence_length=128,
    )
    inputs = {
        "token_ids": keras.Input((128,), dtype="int32"),
        "segment_ids": keras.Input((128,), dtype="int32"),
        "padding_mask": keras.Input((128,), dtype="int32"),
        "mask_positions": keras.Input((20,), dtype="int32"),
    }
    features = backbone({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")})
    head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=vocab_size, token_embedding=backbone.token_embedding
    )
    model = keras.Model(inputs, head(features["sequence_output"], inputs["mask_positions"]))
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    rng = np.random.default_rng(0)
    n = batch_size * steps
    x = {
        "token_ids": rng.integers(5, vocab_size, (n, 128)).astype("int32"),
        "segment_ids": np.zeros((n, 128), "int32"),
        "padding_mask": np.ones((n, 128), "int32"),
        "mask_positions": rng.integers(1, 127, (n, 20)).astype("int32"),
    }
    y = rng.integers(5, vocab_size, (n, 20)).astype("int32")
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # compile
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def checksum_rates(source_folder, folder, megabytes, shard_megabytes=25):
    """`pipeline.validate`'s rate (MB of shards per second) with SHA-256
    checks, on about `megabytes` of shards made of copies of the tool's shards
    in `source_folder` (whole records: the copies are valid shards), listed
    in a manifest.json as `create` writes it. Returns (megabytes, rates):
    "cached" (files in the page cache: hashing), "disk" (evicted from the
    cache first, where the system allows it) and "size_only" (a manifest
    without checksums, as before them)."""
    per_copy = records.read_manifest(source_folder)["instances"]
    blob = b""
    for path in patterns.match_files(os.path.join(source_folder, "*.tfrecord")):
        with open(path, "rb") as f:
            blob += f.read()
    shard_megabytes = min(shard_megabytes, megabytes / 4)  # a few shards at least: threads
    repeats = max(1, int(shard_megabytes * 1e6 // len(blob)))
    num_shards = max(1, round(megabytes * 1e6 / (len(blob) * repeats)))
    os.makedirs(folder)
    files, entries = [], []
    for shard in range(num_shards):
        path = records.shard_name(folder, shard, num_shards)
        with open(path, "wb") as f:
            for _ in range(repeats):
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        size = os.path.getsize(path)
        files.append(path)
        entries.append(
            {
                "file": os.path.basename(path),
                "instances": per_copy * repeats,
                "bytes": size,
                "sha256": records.file_sha256(path),
            }
        )
    total = sum(e["bytes"] for e in entries) / 1e6

    def rate(evict=False):
        if evict:
            for path in files:
                _evict_from_page_cache(path)
        start = time.perf_counter()
        pipeline.validate(files, 128, 20)
        return total / (time.perf_counter() - start)

    records.write_manifest(folder, {"num_shards": num_shards, "shards": entries})
    rates = {"cached": max(rate() for _ in range(3))}
    if hasattr(os, "posix_fadvise"):
        rates["disk"] = rate(evict=True)
    size_only = [{k: v for k, v in e.items() if k != "sha256"} for e in entries]
    records.write_manifest(folder, {"num_shards": num_shards, "shards": size_only})
    rates["size_only"] = max(rate() for _ in range(3))
    return total, rates


def _evict_from_page_cache(path):
    """Drops a written (clean) file's pages from the page cache, so the next
    read comes from disk; no privileges needed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def checksum_rows(megabytes, rates):
    seconds_per_gb = {k: 1000 / v for k, v in rates.items()}
    label = f"validate() with SHA-256 checks ({megabytes:.0f} MB of shards)"
    rows = [(f"{label}, cached", f"{rates['cached']:,.0f} MB/s", "")]
    if "disk" in rates:
        rows.append((f"{label}, from disk", f"{rates['disk']:,.0f} MB/s", ""))
    rows.append(
        (
            "validate() size-only (manifest without checksums), per MB of shards",
            f"{rates['size_only']:,.0f} MB/s",
            "",
        )
    )
    for key, value in seconds_per_gb.items():
        if key != "size_only":
            rows.append((f"  1 GB of shards, {key} (extrapolated)", f"{value:.2f} s", ""))
    return rows


def run_checksum_only():
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "source")
        create.create(
            corpus.BUILTIN,
            source,
            instances.Options(dupe_factor=1),
            vocab_file=builtin.KEPT_VOCAB,
            num_shards=2,
            num_workers=1,
        )
        megabytes, rates = checksum_rates(
            source, os.path.join(folder, "checksum"), FLAGS.checksum_megabytes
        )
    print(f"\n{megabytes:.0f} MB of shards, {os.cpu_count()} CPUs\n")
    print("| measurement | rate | ratio |\n|---|---|---|")
    for row in checksum_rows(megabytes, rates):
        print("| " + " | ".join(row) + " |")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(_checksum_json(megabytes, rates), f, indent=1)


def _checksum_json(megabytes, rates):
    return {
        "checksum_megabytes": megabytes,
        "validate_mb_per_s": rates,
        "validate_seconds_per_gb": {k: 1000 / v for k, v in rates.items()},
    }


def main(argv):
    del argv
    if FLAGS.checksum_only:
        run_checksum_only()
        return
    with tempfile.TemporaryDirectory() as folder:
        path, megabytes = make_text(folder, FLAGS.megabytes)
        vocab_file = vocab.train_vocabulary(
            corpus.builtin_documents(), os.path.join(folder, "vocab"), vocab_size=8192
        )
        raw = raw_encoding_rate(path, vocab_file, megabytes)
        one = creation_rate(path, vocab_file, os.path.join(folder, "one"), 1, megabytes)
        two = creation_rate(path, vocab_file, os.path.join(folder, "two"), 2, megabytes)
        pipeline = pipeline_rate(os.path.join(folder, "two"), FLAGS.batch_size)
        checksum_mb, checksum = checksum_rates(
            os.path.join(folder, "two"), os.path.join(folder, "checksum"), FLAGS.checksum_megabytes
        )
        consumed = model_rate(8192, FLAGS.batch_size)
    rows = [
        ("raw WordPiece encoding (tokenizers, 1 thread)", f"{raw:.2f} MB/s", "1.00"),
        ("creation, 1 process", f"{one:.2f} MB/s", f"{one / raw:.2f} of raw"),
        (
            "creation, 2 processes",
            f"{two:.2f} MB/s ({two / 2:.2f} per core)",
            f"{two / one:.2f}x 1 process",
        ),
        ("input pipeline, length 128", f"{pipeline:,.0f} sequences/s", ""),
        (
            "small BERT training step (4x256, AdamW, XLA)",
            f"{consumed:,.0f} sequences/s",
            f"pipeline = {pipeline / consumed:.0f}x this",
        ),
        *checksum_rows(checksum_mb, checksum),
    ]
    print(f"\n{megabytes:.1f} MB of text, {os.cpu_count()} CPUs\n")
    print("| measurement | rate | ratio |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(
                {
                    "megabytes": megabytes,
                    "raw_mb_per_s": raw,
                    "creation_mb_per_s": {"1": one, "2": two},
                    "pipeline_sequences_per_s": pipeline,
                    "model_sequences_per_s": consumed,
                    **_checksum_json(checksum_mb, checksum),
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    cli.run(main)
