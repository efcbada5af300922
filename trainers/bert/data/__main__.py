"""Create BERT pretraining TFRecords from text.

    python tools/create_pretraining_data.py --output_dir=/tmp/bert_data
    python tools/create_pretraining_data.py --input_file='corpus/*.txt' \\
        --output_dir=data --num_shards=64 --vocab_size=30522 --do_whole_word_mask

Flags keep google-research/bert's names. Without --input_file the built-in
corpus (CPython's English help text) is used; without --vocab_file a WordPiece
vocabulary is trained on the input. Shards are written in parallel, each
atomically, with a manifest.json beside them that the trainer checks. An
--output_dir holding another run's shards or manifest is refused; --overwrite
replaces them (re-running the same command into its folder needs no flag).
(The flags live here, not in `create`, so importing the library defines
none.) Also `python -m trainers.bert.data` and `bert-create-pretraining-data`.
"""

import os

from trainers import stack

stack.require("tokenizers", ["cpu"], "bert-create-pretraining-data")  # its WordPiece

from absl import app, flags, logging  # noqa: E402

from trainers.bert import cli  # noqa: E402
from trainers.bert.data import records  # noqa: E402
from trainers.bert.data.shards import corpus, instances, vocab  # noqa: E402
from trainers.bert.data.shards.create import create, merge_manifests  # noqa: E402
from trainers.bert.errors import ConfigError, DataError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "input_file", corpus.BUILTIN, "Comma-separated globs of text files, or builtin:pydoc."
)
flags.DEFINE_string("output_dir", None, "Where shards, vocab.txt and manifest.json go.")
flags.DEFINE_string(
    "output_file", None, "Comma-separated shard paths (original tool); sets --num_shards."
)
flags.DEFINE_integer("num_shards", 4, "Number of output shards.")
flags.DEFINE_string("vocab_file", None, "An existing vocab.txt; trained from the input if unset.")
flags.DEFINE_integer("vocab_size", 8192, "Size of a trained vocabulary.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per instance, [CLS] and [SEP] included.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked-LM targets per instance at most.")
flags.DEFINE_float("masked_lm_prob", 0.15, "Fraction of tokens to mask.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length.")
flags.DEFINE_integer("dupe_factor", 10, "Passes over the input, each with new masks.")
flags.DEFINE_bool("do_whole_word_mask", False, "Mask all pieces of a word together.")
flags.DEFINE_integer("random_seed", 12345, "Seed; output is determined by it and the shards.")
flags.DEFINE_integer(
    "random_next_window", 1000, "Recent documents kept to draw random next segments from."
)
flags.DEFINE_integer(
    "num_workers",
    None,
    "Processes writing shards; default: all cores (one for under 4 MB of text).",
)
flags.DEFINE_integer("task_index", 0, "This machine's task in an array job of --num_tasks.")
flags.DEFINE_integer("num_tasks", 1, "Machines sharing the shards (s % num_tasks == task).")
flags.DEFINE_bool("merge_manifests", False, "Combine the --num_tasks tasks' manifests and stop.")
flags.DEFINE_bool("vocab_only", False, "Train output_dir/vocab.txt on the input and stop.")
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace another run's shards and manifest in --output_dir (without it such a folder "
    "is refused).",
)


def options_from_flags():
    return instances.Options(
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob,
        dupe_factor=FLAGS.dupe_factor,
        do_whole_word_mask=FLAGS.do_whole_word_mask,
        random_next_window=FLAGS.random_next_window,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(
            f"unexpected arguments {argv[1:]}: a flag takes one value (--flag=value); quote "
            "a glob so the shell does not expand it: --input_file='corpus/*.txt'"
        )
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # stderr is for errors; progress is on stdout
    output_files = FLAGS.output_file.split(",") if FLAGS.output_file else None
    output_dir = FLAGS.output_dir or (os.path.dirname(output_files[0]) if output_files else None)
    if not output_dir:
        raise ConfigError("give --output_dir (or --output_file)")
    try:
        if FLAGS.merge_manifests:
            merge_manifests(output_dir, FLAGS.num_tasks)
            return
        if FLAGS.vocab_only:
            vocab_only(output_dir)
            return
        create(
            FLAGS.input_file,
            output_dir,
            options_from_flags(),
            vocab_file=FLAGS.vocab_file,
            vocab_size=FLAGS.vocab_size,
            do_lower_case=FLAGS.do_lower_case,
            num_shards=FLAGS.num_shards,
            output_files=output_files,
            seed=FLAGS.random_seed,
            num_workers=FLAGS.num_workers,
            task_index=FLAGS.task_index,
            num_tasks=FLAGS.num_tasks,
            overwrite=FLAGS.overwrite,
        )
    except (ConfigError, DataError):
        raise
    except ValueError as error:  # the library's argument checks
        raise ConfigError(str(error)) from None


def vocab_only(output_dir):
    """--vocab_only: output_dir/vocab.txt, trained on the input. A folder
    holding a finished set is refused without --overwrite: its vocab.txt is
    the one its shards were made with."""
    vocab.check_vocab_size(FLAGS.vocab_size)
    if not FLAGS.overwrite and records.read_manifest(output_dir) is not None:
        raise ConfigError(
            f"--vocab_only: {output_dir} holds a finished set (manifest.json) made with its "
            "vocab.txt; train the vocabulary into another --output_dir, or add --overwrite "
            "to replace it"
        )
    files = corpus.input_files(FLAGS.input_file)
    empty = corpus.check_text(files)
    if empty:
        print(corpus.empty_note(empty, files))
    path = vocab.train_vocabulary(
        corpus.read_documents(files), output_dir, FLAGS.vocab_size, FLAGS.do_lower_case
    )
    print(f"wrote {path}")


def run():
    cli.run(main, name="bert-create-pretraining-data")


if __name__ == "__main__":
    run()
