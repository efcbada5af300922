"""Corpora to pretraining text (BERT's format: one sentence per line, a blank
line between documents), for create_pretraining_data.

    python tools/prepare_corpus.py --input=enwiki-latest-pages-articles-multistream.xml.bz2 \\
        --output_dir=/data/wiki_text --processes=8
    python tools/prepare_corpus.py --input='/data/books/*.parquet' --text_column=text \\
        --output_dir=/data/books_text --dedup

Each file is read as its content says, whatever its name (Wikimedia's parts
are named `...-pages-articles1.xml-p10p30302.bz2`): compression by magic
number (bz2, gzip), then a MediaWiki XML dump, Parquet, JSON lines, or
plain text (one document per file; a folder: every file in it); a name that
says otherwise gets a note. --format reads every file as the format named.
A multistream bz2 dump (English Wikipedia's one file) is cut into ranges
of whole bz2 streams of about --range_mb, prepared in parallel like files,
at the offsets of its index (--index, else the `...-index.txt.bz2` beside
it) or at the stream starts found in it; the same output on any number of
processes. Input that would be text but plainly is not (other XML, HTML, a
JSON document, binary, not UTF-8), an index of another dump and a file cut
short stop the tool with one line, exit status 1. A killed or stopped run,
restarted, skips the files and ranges it finished. Also
`python tools/prepare_corpus.py` and `bert-prepare-corpus`;
the library is `trainers.bert.data.text.prepare` (the flags live here, so
importing it defines none).
"""

from absl import app, flags

from trainers.bert import cli
from trainers.bert.data.text import prepare, sources
from trainers.bert.errors import ConfigError

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Comma-separated globs or folders of input files.")
flags.DEFINE_string("output_dir", None, "Where the text shards and manifest.json go.")
flags.DEFINE_enum(
    "format",
    None,
    list(sources.FORMATS),
    "Read every input file as this format (default: each file's content decides: a MediaWiki "
    "dump, Parquet, JSON lines, else plain text; input that is plainly not text is refused).",
)
flags.DEFINE_string("text_column", "text", "Parquet and JSONL: the field holding the text.")
flags.DEFINE_string("language", "en", "The sentence segmenter's language (sentencex).")
flags.DEFINE_integer(
    "processes", 1, "Input files (and ranges of a multistream dump) prepared at once."
)
flags.DEFINE_float("shard_mb", 128.0, "Text per output shard, in MB.")
flags.DEFINE_bool("dedup", False, "Remove exact duplicate documents.")
flags.DEFINE_string(
    "index",
    None,
    "The index of the one multistream bz2 dump among the inputs "
    "(`...-multistream-index.txt.bz2`, lines OFFSET:PAGE_ID:TITLE): the dump is cut into "
    "ranges at its stream offsets. Default: Wikimedia's index beside each dump (its name with "
    "`.xml.bz2` replaced by `-index.txt.bz2`), else the stream starts found in the dump; the "
    "same ranges either way. An index of another dump is refused.",
)
flags.DEFINE_float(
    "range_mb",
    64.0,
    "A multistream dump's ranges, in MB of the compressed file: the unit of parallel work "
    "within one dump. A restart must use the same value to keep the finished ranges.",
)
flags.mark_flags_as_required(["input", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.processes < 1 or FLAGS.shard_mb <= 0 or FLAGS.range_mb <= 0:
        raise ConfigError("--processes must be at least 1, --shard_mb and --range_mb above 0")
    options = prepare.Options(
        fmt=FLAGS.format,
        text_column=FLAGS.text_column,
        language=FLAGS.language,
        shard_mb=FLAGS.shard_mb,
        dedup=FLAGS.dedup,
        range_mb=FLAGS.range_mb,
        index=FLAGS.index,
    )
    manifest = prepare.prepare(FLAGS.input, FLAGS.output_dir, options, FLAGS.processes)
    skipped = ", ".join(f"{n:,} {reason}" for reason, n in sorted(manifest["skipped"].items()))
    print(
        f"{manifest['documents']:,} documents, {manifest['sentences']:,} sentences, "
        f"{manifest['bytes_out'] / 1e6:.1f} MB of text in {len(manifest['shards'])} shard(s) "
        f"from {manifest['bytes_in'] / 1e6:.1f} MB; skipped: {skipped or 'none'}"
        + (f"; {manifest['duplicates_removed']:,} duplicates removed" if FLAGS.dedup else "")
    )


def run():
    cli.run(main, name="bert-prepare-corpus")


if __name__ == "__main__":
    run()
