"""The data program: text to pretraining TFRecords, and the checked input
pipeline that reads them. Imports nothing from the training program.

    corpus     documents from text files or the built-in corpus
    vocab      WordPiece vocabularies (tokenizers), vocab.txt
    instances  sentence pairs and masking, as google-research/bert
    records    the TFRecord schema, atomic shards, manifest.json
    create     creation in parallel processes; __main__ is its command line
    builtin    data from the built-in corpus, made on first use
    patterns   comma-separated globs -> files
    pipeline   the validated tf.data pipeline
    remask     dynamic (re-)masking inside the pipeline
    inputs     each phase's files checked; the per-worker input of a phase
"""
