"""The trained encoder as a keras-hub preset, for fine-tuning."""

import os
import shutil
import tempfile

import tensorflow as tf

from trainers.bert.data.shards.vocab import cased_tokens

ENCODER = "encoder"


def export_encoder(model_dir, backbone, vocab_file=None, lowercase=None):
    """The encoder as a keras-hub preset directory (config.json and weights,
    plus the tokenizer when the vocabulary is known), loadable with
    `keras_hub.models.BertBackbone.from_preset(path)` for fine-tuning.

    The tokenizer normalises as training's: `lowercase` (None: the
    vocabulary's casing, cased when a token has a capital) lower-cases and
    strips accents, as google-research/bert's do_lower_case."""
    path = os.path.join(model_dir, ENCODER)
    # keras-hub writes presets with local file APIs: for an object store
    # (gs://) the preset is made in a local folder and copied over.
    remote = "://" in path
    local = tempfile.mkdtemp(prefix="encoder-") if remote else path
    write_preset(local, backbone, vocab_file, lowercase)
    if remote:
        copy_tree(local, path)
        shutil.rmtree(local)
    return path


def write_preset(path, backbone, vocab_file=None, lowercase=None):
    """`backbone` and the tokenizer of `vocab_file` (as `export_encoder`) as
    a keras-hub preset in the local folder `path`."""
    backbone.save_to_preset(path)
    if vocab_file:
        with tf.io.gfile.GFile(vocab_file) as f:
            tokens = [line.rstrip() for line in f]  # as keras-hub reads a vocabulary file
        if lowercase is None:
            lowercase = not cased_tokens(tokens)
        keras_hub_tokenizer(tokens, lowercase).save_to_preset(path)


def keras_hub_tokenizer(tokens, lowercase):
    """keras-hub's `BertTokenizer` of the vocabulary `tokens`, normalising
    as training's: `lowercase` also strips accents (google-research/bert's
    do_lower_case). keras-hub strips accents only when told (strip_accents,
    saved in tokenizer.json): without it "café" is [UNK] where training has
    "cafe"."""
    import keras_hub

    return keras_hub.models.BertTokenizer(
        vocabulary=tokens, lowercase=lowercase, strip_accents=lowercase
    )


def copy_tree(source, destination):
    """A folder into `destination`, either also on an object store (gs://)."""
    for folder, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(folder, source)
        target = destination if relative == "." else os.path.join(destination, relative)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), os.path.join(target, name), overwrite=True)
