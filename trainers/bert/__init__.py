"""BERT pretraining: the training program (`train`, `loop`, `recovery`, an
engine in `tf_engine/`) over the data program in `data/`."""
