"""The trained encoder as a keras-hub preset, for fine-tuning."""

import os
import shutil
import tempfile

import tensorflow as tf

ENCODER = "encoder"


def export_encoder(model_dir, backbone, vocab_file=None, lowercase=True):
    """The encoder as a keras-hub preset directory (config.json and weights,
    plus the tokenizer when the vocabulary is known), loadable with
    `keras_hub.models.BertBackbone.from_preset(path)` for fine-tuning."""
    import keras_hub

    path = os.path.join(model_dir, ENCODER)
    # keras-hub writes presets with local file APIs: for an object store
    # (gs://) the preset is made in a local folder and copied over.
    remote = "://" in path
    local = tempfile.mkdtemp(prefix="encoder-") if remote else path
    backbone.save_to_preset(local)
    if vocab_file:
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab_file, lowercase=lowercase)
        tokenizer.save_to_preset(local)
    if remote:
        copy_tree(local, path)
        shutil.rmtree(local)
    return path


def copy_tree(source, destination):
    """A local folder into `destination`, also on an object store (gs://)."""
    for folder, _, files in os.walk(source):
        relative = os.path.relpath(folder, source)
        target = destination if relative == "." else os.path.join(destination, relative)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), os.path.join(target, name), overwrite=True)
