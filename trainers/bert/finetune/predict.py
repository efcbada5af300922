"""Predict from raw text with a fine-tuning run's export, no Python to write.

    python -m trainers.bert.finetune.predict --model=MODEL_DIR/export \\
        --input=texts.tsv --output=predictions.jsonl

`--model` is the folder a fine-tuning run writes as `model_dir/export`: a
classifier (`export.task_preset`: GLUE, the built-in task) or a SQuAD span
model (`export.answering`). `--input` holds one example a line (UTF-8): the
text, or for a pair task (MRPC, MNLI, STS-B, ...) the two texts separated by
a tab; for SQuAD the question, a tab, and its context. `--output` gets one
JSON line per input line, in order:

    {"label": "1", "probabilities": {"0": 0.12, "1": 0.88}}    classification
    {"score": 3.7}                                               regression (STS-B)
    {"answer": "the answer", "score": 7.9}                       SQuAD

A classifier's texts are tokenized and cut to the model's sequence length
by the export's own keras-hub preprocessor, as in fine-tuning (a pair loses
tokens from its longer text first); a SQuAD context is read in the run's
windows and its question cut to `max_query_length`, and the answer decoded
as the run's predictions.json (`score`: the answer's start and end logits
summed; null where no window holds a span). How many examples were cut is
said once. Errors are one line (`trainers.bert.cli`): exit status 2 for a
folder that is not a run's export, 1 for an input file that cannot be read.
"""

import json
import os
import time

from trainers import stack

stack.check_trainer()

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from trainers.bert import cli  # noqa: E402
from trainers.bert.errors import DataError  # noqa: E402
from trainers.bert.finetune.export import answering, task_preset  # noqa: E402
from trainers.bert.run import run_dir  # noqa: E402

NAME = "bert-predict"
PROGRESS_EVERY = 10.0  # seconds between progress lines

FLAGS = flags.FLAGS


def read_examples(path, fields, layout):
    """The examples of `path`: a tuple of `fields` texts a line (`layout`
    says which, for errors). An empty file, a line that is not UTF-8 or has
    another number of tab-separated fields raise DataError naming the file
    and line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise DataError(f"--input {path}: {error.strerror}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the last line's newline
    if not lines:
        raise DataError(f"--input {path}: empty, no text to predict from")
    examples = []
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as error:
            raise DataError(f"{path}:{number}: not UTF-8 text ({error.reason})") from None
        texts = tuple(line.split("\t"))
        if len(texts) != fields:
            raise DataError(f"{path}:{number}: {len(texts)} tab-separated field(s); {layout}")
        examples.append(texts)
    return examples


def predict(model, input_path, output_path, batch_size=32, say=print):
    """Predicts every line of `input_path` with the export `model`, writes
    `output_path` (JSON lines, atomically) and returns the number of
    examples; `say` gets the progress and the truncation count."""
    if os.path.exists(os.path.join(model, answering.SETTINGS_FILE)):
        lines, cut = _answers(model, input_path, batch_size, say)
    else:
        lines, cut = _classes(model, input_path, batch_size, say)
    if cut:
        say(cut)
    text = "".join(line + "\n" for line in lines)
    say(f"wrote {run_dir.write_atomically(output_path, text)}")
    return len(lines)


def _classes(model, input_path, batch_size, say):
    """(output lines, the truncation note or None) of a classifier."""
    folder = task_preset.read(model)
    layout = f"the {folder.task} classifier takes " + (
        "2: text<TAB>text_pair" if folder.pair else "one text a line, no tab"
    )
    examples = read_examples(input_path, len(folder.inputs), layout)
    import keras_hub  # after the checks: an error comes before its start-up

    classifier = keras_hub.models.TextClassifier.from_preset(model)
    tokenizer = classifier.preprocessor.tokenizer
    say(
        f"classifying {len(examples)} example(s) of {input_path} with the {folder.task} "
        f"classifier {model} ({folder.max_seq_length} tokens)"
    )
    special = 1 + len(folder.inputs)  # [CLS], and [SEP] after each text
    truncated = 0

    def batch(chunk):
        nonlocal truncated
        texts = tuple(list(column) for column in zip(*chunk))
        lengths = sum(np.array([len(ids) for ids in tokenizer(column)]) for column in texts)
        truncated += int(np.sum(lengths + special > folder.max_seq_length))
        logits = np.asarray(classifier.predict_on_batch(texts if folder.pair else texts[0]))
        return [_prediction(folder, row) for row in logits.astype(np.float64)]

    lines = _in_batches(examples, batch_size, batch, say)
    cut = truncated and (
        f"{truncated} of {len(examples)} example(s) are longer than the model's "
        f"{folder.max_seq_length} tokens: cut to fit, as in fine-tuning"
    )
    return lines, cut or None


def _answers(model, input_path, batch_size, say):
    """(output lines, the truncation note or None) of a SQuAD span model."""
    folder = answering.read(model)
    layout = "the SQuAD span model takes 2: question<TAB>context"
    examples = read_examples(input_path, 2, layout)
    answerer = answering.Answerer(folder)
    longest = folder.settings.max_query_length
    say(
        f"answering {len(examples)} question(s) of {input_path} with the SQuAD span model "
        f"{model} (windows of {folder.settings.max_seq_length} tokens)"
    )

    def batch(chunk):
        answers = answerer.answer([q for q, _ in chunk], [c for _, c in chunk])
        return [
            {"answer": a["answer"], "score": a["score"] if np.isfinite(a["score"]) else None}
            for a in answers
        ]

    lines = _in_batches(examples, batch_size, batch, say)
    cut = sum(len(answerer.tokenizer.encode(q)[0]) > longest for q, _ in examples)
    note = cut and (
        f"{cut} of {len(examples)} question(s) are longer than the model's {longest} tokens: "
        "cut to fit, as in fine-tuning"
    )
    return lines, note or None


def _in_batches(examples, batch_size, predict_batch, say):
    """JSON lines of `predict_batch(examples)` over batches of the
    examples, with progress every PROGRESS_EVERY seconds and at the end."""
    lines, last_said = [], time.monotonic()
    for first in range(0, len(examples), batch_size):
        chunk = examples[first : first + batch_size]
        lines.extend(json.dumps(p) for p in predict_batch(chunk))
        done = first + len(chunk)
        if time.monotonic() - last_said >= PROGRESS_EVERY or done == len(examples):
            say(f"predicted {done} of {len(examples)}")
            last_said = time.monotonic()
    return lines


def _prediction(folder, logits):
    """One output line: the label and the softmax over the labels, or the
    regression's score."""
    if folder.regression:
        return {"score": float(logits[0])}
    exp = np.exp(logits - logits.max())
    probabilities = exp / exp.sum()
    return {
        "label": folder.labels[int(np.argmax(logits))],
        "probabilities": {name: float(p) for name, p in zip(folder.labels, probabilities)},
    }


def _define_flags():
    """The command's flags, defined when it runs: importing the module (its
    tests do) leaves absl's registry as it was (another command has an
    `--input`)."""
    flags.DEFINE_string("model", None, "A fine-tuning run's export folder (its model_dir/export).")
    flags.DEFINE_string(
        "input",
        None,
        "Texts, one example a line; a tab separates a pair's texts (SQuAD: question<TAB>context).",
    )
    flags.DEFINE_string("output", None, "Predictions, one JSON line per input line.")
    flags.DEFINE_integer("batch_size", 32, "Examples per forward pass.", lower_bound=1)
    flags.mark_flags_as_required(["model", "input", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    predict(FLAGS.model, FLAGS.input, FLAGS.output, FLAGS.batch_size)


def run():
    _define_flags()
    cli.run(main, name=NAME)


if __name__ == "__main__":
    run()
