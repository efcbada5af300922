"""The fine-tuned classifier as a TensorFlow SavedModel (`serving`): in a
fresh process where keras-hub and this project cannot be imported, it
tokenizes raw strings in its graph and gives the run's own dev logits,
labels and probabilities (a regression: its scores)."""

import json

import keras
import numpy as np
import pytest

from tests.scripts import run_process, without
from tests.trainers.bert.finetune.conftest import SMALL, features_as_inputs
from trainers.bert.finetune import datasets, glue, heads
from trainers.bert.finetune.export import serving, task_preset
from trainers.bert.formats import preset

pytestmark = pytest.mark.slow

# Loads the SavedModels given as (path, pair?) in argv's JSON, classifies the
# texts there, and prints the outputs with the modules of keras-hub and of
# this project that got imported, and the Keras modules loaded beyond those
# TensorFlow and tensorflow-text import themselves (TensorFlow requires the
# keras package and imports part of it; tensorflow-text its tf.keras).
LOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401 (its ops)
before = {m for m in sys.modules if m.split(".")[0] == "keras"}
results = []
for path, texts in json.loads(sys.argv[1]):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    inputs = dict(zip(sorted(serve.structured_input_signature[1]), texts))
    outputs = serve(**{k: tf.constant(v) for k, v in inputs.items()})
    results.append({
        k: [b.decode() for b in v.numpy()] if v.dtype == tf.string else v.numpy().tolist()
        for k, v in outputs.items()
    })
loaded = [m for m, v in sys.modules.items() if v and m.split(".")[0] in ("keras_hub", "trainers")]
keras = sorted({m for m in sys.modules if m.split(".")[0] == "keras"} - before)
print(json.dumps({"results": results, "loaded": loaded, "keras": keras}, default=str))
"""


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory, mrpc_export, stsb_export):
    """(examples, the Keras model's outputs, SavedModel) of each task kind:
    MRPC's pairs (the run's dev logits; the SavedModel the run wrote);
    STS-B's regression, written as a JAX-engine run writes it (Keras'
    backend not tensorflow: by a child process); single texts (the MRPC
    model exported as an SST-2 one, its logits computed by the Keras model
    on the trainer's own features)."""
    folder = tmp_path_factory.mktemp("serving")
    mrpc = mrpc_export.saved_model
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.backend, "backend", lambda: "jax")
        stsb = serving.write_saved_model(str(folder / "stsb"), stsb_export.path)
    tokenizer = preset.read(mrpc_export.encoder).tokenizer
    length = SMALL["max_seq_length"]
    singles = [glue.Example(e.guid, e.texts[:1]) for e in mrpc_export.examples]
    features = features_as_inputs(datasets.pair_features(singles, tokenizer, length), length)
    logits = np.asarray(mrpc_export.model(features, training=False)["logits"])
    single_preset = task_preset.write(
        str(folder / "sst2_preset"),
        mrpc_export.model,
        heads.Classification(2),
        tokenizer,
        length,
        ["negative", "positive"],
        "sst2",
    )
    single = serving.write_saved_model(str(folder / "sst2"), single_preset)
    return {
        "mrpc": (mrpc_export.examples, mrpc_export.logits, mrpc),
        "stsb": (stsb_export.examples, stsb_export.scores, stsb),
        "sst2": (singles, logits, single),
    }


def test_a_fresh_tensorflow_process_serves_the_runs_predictions(tmp_path, saved_models):
    argument = json.dumps(
        [[path, [list(t) for t in zip(*(e.texts for e in examples))]]
         for examples, _, path in saved_models.values()]
    )  # fmt: skip
    blocked = without(tmp_path / "site", "keras_hub", "trainers")
    output = run_process("-c", LOAD, argument, env=blocked, timeout=300)
    found = json.loads(output.splitlines()[-1])
    assert found["loaded"] == [] and found["keras"] == []
    mrpc, stsb, sst2 = found["results"]
    for got, name, labels in ((mrpc, "mrpc", ["0", "1"]), (sst2, "sst2", ["negative", "positive"])):
        logits = saved_models[name][1]
        assert sorted(got) == ["label", "logits", "probabilities"]
        np.testing.assert_allclose(got["logits"], logits, rtol=0, atol=1e-6)
        expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        np.testing.assert_allclose(got["probabilities"], expected, rtol=0, atol=1e-6)
        assert got["label"] == [labels[i] for i in logits.argmax(-1)]
    assert sorted(stsb) == ["score"]
    np.testing.assert_allclose(stsb["score"], saved_models["stsb"][1], rtol=0, atol=1e-6)


def test_the_signature_takes_the_tasks_texts(saved_models):
    import tensorflow as tf

    for name, inputs in (("mrpc", ["text", "text_pair"]), ("sst2", ["text"])):
        serve = tf.saved_model.load(saved_models[name][2]).signatures[serving.SIGNATURE]
        specs = serve.structured_input_signature[1]
        assert sorted(specs) == inputs
        assert all(s.dtype == tf.string and s.shape.as_list() == [None] for s in specs.values())
