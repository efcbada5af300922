"""Models in and out of a run.

export              the encoder as a keras-hub preset (model_dir/encoder)
google_checkpoint   google-research/bert's bert_model.ckpt, read and written
preset              a keras-hub preset folder, as fine-tuning reads it
warm_start          a new run's weights from either of the two
tokenizer           WordPiece with character offsets, from a vocab.txt
"""
