"""The data program: raw corpora to text, text to pretraining TFRecords, and
the checked input pipeline that reads them. Imports nothing from the
training program.

    text/      raw corpora (MediaWiki dumps, Parquet, JSONL, text) to BERT's
               one-sentence-per-line text; `text.main` is tools/prepare_corpus.py
    shards/    text to TFRecord shards: documents, vocabularies, instances,
               parallel creation, the built-in data; __main__ is its command
    input/     the shards to batches: each phase's files checked, the tf.data
               pipeline, dynamic masking
    records    the TFRecord schema, atomic shards, manifest.json
    patterns   comma-separated globs -> files
"""
