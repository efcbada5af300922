"""A fine-tuned classifier as a TensorFlow SavedModel for serving
(TensorFlow Serving, TF Lite's converter, any TensorFlow program): raw
strings in, labels out, the tokenization inside the graph. Loading it needs
TensorFlow and tensorflow-text's ops, nothing of Keras, keras-hub or this
project:

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the ops)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    serve(text=tf.constant(["a sentence"]))                    # one text
    serve(text=tf.constant(["a"]), text_pair=tf.constant(["b"]))  # pair tasks

Outputs, one row per example: `label` (the label's name), `probabilities`
(softmax over the labels, float32, in `labels.json`'s order) and `logits`;
a regression (STS-B) returns `score` instead of the three.

It is written from the task preset (`task_preset`), whose keras-hub
preprocessor and classifier run in the traced graph, so it computes what
`TextClassifier.from_preset(...).predict` does. Tracing Keras layers into a
TensorFlow graph needs Keras' tensorflow backend: under another backend
(a JAX-engine run) the same writer runs in a child process
(`python -m trainers.bert.finetune.export.serving PRESET OUT`).
"""

import tensorflow as tf

SIGNATURE = "serving_default"


def write_saved_model(path, preset_path):
    """The classifier preset at `preset_path` (`task_preset.write`'s) as a
    SavedModel at `path` (see the module docstring); returns `path`."""
    from trainers.bert.finetune.export import saved_models, task_preset

    task_preset.read(preset_path)  # checked here, before a child process starts
    return saved_models.write(path, preset_path, __name__, _write)


def _write(path, preset_path):
    import keras_hub

    from trainers.bert.finetune.export import task_preset

    folder = task_preset.read(preset_path)
    classifier = keras_hub.models.TextClassifier.from_preset(preset_path)
    module = _Serving(classifier, folder)
    tf.saved_model.save(module, path, signatures={SIGNATURE: module.serve})
    return path


class _Serving(tf.Module):
    """The preprocessor and the classifier traced into one function of
    string tensors. Only their variables are tracked, as plain TensorFlow
    variables: the SavedModel holds no Keras object to revive."""

    def __init__(self, classifier, folder):
        super().__init__(name="classifier")
        self._weights = [v.value for v in classifier.variables]
        labels = None if folder.regression else tf.constant(list(folder.labels))
        preprocessor = classifier.preprocessor

        def serve(text, text_pair=None):
            texts = (text,) if text_pair is None else (text, text_pair)
            # y=None: a pair is the text input, not keras-hub's (x, y) unpacked.
            features = preprocessor(texts, y=None)
            logits = tf.cast(classifier(features, training=False), tf.float32)
            if labels is None:
                return {"score": logits[:, 0]}
            return {
                "label": tf.gather(labels, tf.argmax(logits, axis=-1)),
                "probabilities": tf.nn.softmax(logits, axis=-1),
                "logits": logits,
            }

        texts = [tf.TensorSpec([None], tf.string, name=name) for name in folder.inputs]
        self.serve = tf.function(serve, input_signature=texts)


def main(argv):
    from absl import app

    if len(argv) != 3:
        raise app.UsageError("usage: python -m trainers.bert.finetune.export.serving PRESET OUT")
    print(f"wrote {_write(argv[2], argv[1])}", flush=True)


if __name__ == "__main__":
    from trainers.bert import cli

    cli.run(main, name="bert-export-serving")
