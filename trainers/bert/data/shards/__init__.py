"""Text to pretraining TFRecord shards, as google-research/bert's
create_pretraining_data: documents (`corpus`), vocabularies (`vocab`),
sentence pairs and masking (`instances`), parallel creation (`create`), and
the offline corpora (`builtin`, `docstrings`)."""
