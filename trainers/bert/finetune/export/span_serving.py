"""The fine-tuned SQuAD span model as a TensorFlow SavedModel for serving:
questions and contexts as strings in, answers out, with the tokenization,
the windows and the span decoding inside the graph. Loading it needs
TensorFlow and tensorflow-text's ops, nothing of Keras, keras-hub or this
project:

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the ops)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    serve(question=tf.constant(["Who?"]), context=tf.constant(["..."]))
    # -> {"answer": [b"..."], "score": [float32]}

(`import tensorflow_text` imports Keras for its Keras layers; a process
without Keras registers the ops alone with `register_ops`'s recipe.)

It is written from an answering folder (`answering`) and answers as
`answering.load(folder).answer` does, which answers as the run's
predictions.json: the same windows (`squad.features`: [CLS] question
[SEP] window [SEP], max_seq_length tokens, doc_stride apart, the question
cut to max_query_length), the same candidates and order (`spans.decode`:
the n_best_size best starts and ends of each window over the whole padded
row, the lower position first on a tie, max-context starts, at most
max_answer_length tokens, scores summed in float64, the first of equal
scores), v2.0's no-answer rule with the smallest [CLS] score and
null_score_threshold, the answer cut from the context's own characters
and extended over the combining marks that follow it. `score` is the
answer's logit sum (the no-answer's where the answer is "", -inf where a
v1.1 model finds no span), as float32.

The tokenizer is tensorflow-text's `FastBertTokenizer` on the same
vocabulary, whose offsets (bytes of the original string) cover what the
run's `tokenizers` offsets cover (characters), lower-casing and accent
stripping included. Where the two normalise differently the token ids,
and so the answers, can differ: with `lowercase`, tensorflow-text folds
case as NFKC_Casefold ("ß" -> "ss", the ligature "ﬁ" -> "fi", full-width
letters to ASCII) where the run lower-cases as Python's str.lower() (pinned
in tests/trainers/bert/finetune/export/test_squad_export.py); a word of
more than 200 bytes (the run: 200 characters) is [UNK].

Tracing Keras layers into a TensorFlow graph needs Keras' tensorflow
backend: under another backend the writer runs in a child process
(`python -m trainers.bert.finetune.export.span_serving ANSWERING_DIR OUT`).
"""

import glob
import os
import sys

SIGNATURE = "serving_default"
MAX_BYTES_PER_WORD = 200  # the run's max_input_chars_per_word, in bytes here


def write_saved_model(path, answering_path):
    """The answering folder at `answering_path` (`answering.write`'s) as a
    SavedModel at `path` (see the module docstring); returns `path`."""
    from trainers.bert.finetune.export import answering, saved_models

    answering.read(answering_path)  # checked here, before a child process starts
    return saved_models.write(path, answering_path, __name__, _write)


def tokenizer(tokens, lowercase):
    """tensorflow-text's tokenizer for the vocabulary `tokens` (see the
    module docstring for where it differs from the run's)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf_text.FastBertTokenizer(
        list(tokens),
        token_out_type=tf.int64,
        unknown_token="[UNK]",
        max_bytes_per_word=MAX_BYTES_PER_WORD,
        lower_case_nfd_strip_accents=bool(lowercase),
    )


def register_ops():
    """tensorflow-text's ops registered without importing the package
    (whose Python imports Keras): what a Keras-free process does before
    `tf.saved_model.load`."""
    import importlib.util

    import tensorflow as tf

    package = importlib.util.find_spec("tensorflow_text").submodule_search_locations[0]
    for library in sorted(glob.glob(os.path.join(package, "python", "ops", "_*.so"))):
        tf.load_op_library(library)


class _Serving:
    """The graph: `__call__(question, context)` -> (answer, score)."""

    def __init__(self, folder, model):
        import tensorflow as tf

        s = folder.settings
        tokens = folder.encoder.tokenizer.tokens
        self.tokenizer = tokenizer(tokens, folder.encoder.tokenizer.lowercase)
        self.model, self.settings = model, s
        self.cls_id = tf.constant(tokens.index("[CLS]"), tf.int64)
        self.sep_id = tf.constant(tokens.index("[SEP]"), tf.int64)

    def __call__(self, question, context):
        import tensorflow as tf

        s = self.settings
        length = s.max_seq_length
        question_ids, _, _ = self.tokenizer.tokenize_with_offsets(question)
        question_ids = question_ids[:, : s.max_query_length]
        context_ids, starts, ends = self.tokenizer.tokenize_with_offsets(context)
        windows = _windows(question_ids.row_lengths(), context_ids.row_lengths(), s)
        inputs, place = _features(
            windows, question_ids, context_ids, self.cls_id, self.sep_id, length
        )
        outputs = self.model(inputs, training=False)
        start_logits = tf.cast(outputs["start_logits"], tf.float32)
        end_logits = tf.cast(outputs["end_logits"], tf.float32)
        best = _best_spans(start_logits, end_logits, place, windows, s)
        return _answers(best, place, windows, context, starts, ends, s)


def _windows(question_lengths, context_lengths, s):
    """Each example's windows as `squad._windows` makes them: a dict of
    per-feature tensors (example, k-th window, start, length, head
    length) and per-example ones (count, step, room: tokens a window holds)."""
    import tensorflow as tf

    room = s.max_seq_length - 3 - question_lengths
    step = tf.minimum(room, s.doc_stride)
    n = context_lengths
    count = tf.where(n <= room, tf.ones_like(n), 1 + (n - room + step - 1) // tf.maximum(step, 1))
    example = tf.repeat(tf.range(tf.size(n, out_type=tf.int64)), count)
    k = tf.ragged.range(count).flat_values
    start = k * tf.gather(step, example)
    size = tf.minimum(tf.gather(n, example) - start, tf.gather(room, example))
    return {
        "example": example,
        "k": k,
        "start": start,
        "length": size,
        "head": tf.gather(question_lengths, example) + 2,
        "count": count,
        "step": step,
        "room": room,
    }


def _features(w, question_ids, context_ids, cls_id, sep_id, length):
    """The model's inputs [features, length] ([CLS] question [SEP] window
    [SEP], zero-padded), and per position: the context token it holds
    (`token`) and whether it is one (`in_context`)."""
    import tensorflow as tf

    example, start, size, head = w["example"], w["start"], w["length"], w["head"]
    position = tf.range(length, dtype=tf.int64)[None, :]
    head_, start_, end_ = head[:, None], start[:, None], (head + size)[:, None]
    in_question = (position >= 1) & (position < head_ - 1)
    in_context = (position >= head_) & (position < end_)
    token = start_ + position - head_

    def gather(ragged, index):
        dense = tf.pad(ragged.to_tensor(), [[0, 0], [0, 1]])  # at least one column
        rows = tf.gather(dense, example)
        return tf.gather(
            rows, tf.clip_by_value(index, 0, tf.shape(dense, tf.int64)[1] - 1), batch_dims=1
        )

    ids = tf.zeros_like(token)
    ids = tf.where(in_context, gather(context_ids, token), ids)
    ids = tf.where(in_question, gather(question_ids, position - 1 + tf.zeros_like(token)), ids)
    ids = tf.where((position == head_ - 1) | (position == end_), sep_id, ids)
    ids = tf.where(position == 0, cls_id, ids)
    inputs = {
        "token_ids": tf.cast(ids, tf.int32),
        "segment_ids": tf.cast((position >= head_) & (position <= end_), tf.int32),
        "padding_mask": tf.cast(position <= end_, tf.int32),
    }
    max_context = in_context & _is_max_context(w, token)
    return inputs, {"token": token, "in_context": in_context, "max_context": max_context}


def _is_max_context(w, token):
    """[features, length]: whether the feature's window gives the context
    token its most context among its example's windows (`squad`'s rule:
    min(tokens left, tokens right) + 0.01 * window length, in float64, the
    first window on a tie)."""
    import tensorflow as tf

    example = w["example"]
    most = tf.reduce_max(w["count"])
    other = tf.range(most, dtype=tf.int64)[None, :]  # [1, W]: the example's windows
    valid = other < tf.gather(w["count"], example)[:, None]  # [F, W]
    starts = other * tf.gather(w["step"], example)[:, None]
    context = tf.gather(_context_lengths(w), example)[:, None]
    sizes = tf.minimum(context - starts, tf.gather(w["room"], example)[:, None])
    ends = starts + sizes - 1
    position = token[:, :, None]  # [F, L, 1]
    starts, ends, sizes, valid = (t[:, None, :] for t in (starts, ends, sizes, valid))
    inside = valid & (starts <= position) & (position <= ends)
    score = tf.cast(tf.minimum(position - starts, ends - position), tf.float64)
    score += 0.01 * tf.cast(sizes, tf.float64)
    score = tf.where(inside, score, -float("inf"))
    best = tf.reduce_max(score, axis=-1, keepdims=True)
    first = _first(score == best, axis=-1)
    return first == w["k"][:, None]


def _context_lengths(w):
    """Each example's context tokens: the last window's start + length."""
    import tensorflow as tf

    last = tf.math.cumsum(w["count"]) - 1
    return tf.gather(w["start"] + w["length"], last)


def _first(mask, axis):
    """The first index along `axis` where `mask` holds (its size where
    none does)."""
    import tensorflow as tf

    size = tf.shape(mask, out_type=tf.int64)[axis]
    index = tf.range(size, dtype=tf.int64)
    shape = [1] * len(mask.shape)
    shape[axis] = -1
    index = tf.reshape(index, shape)
    return tf.reduce_min(tf.where(mask, index, size), axis=axis)


def _best_spans(start_logits, end_logits, place, w, s):
    """Per example: the best span's feature, start and end positions and
    logits, whether there is one, and the no-answer's logits (`spans`'
    candidates and order)."""
    import tensorflow as tf

    top = min(s.n_best_size, s.max_seq_length)
    _, first = tf.math.top_k(start_logits, top)  # the lower position first on a tie
    _, last = tf.math.top_k(end_logits, top)
    first, last = tf.cast(first, tf.int64), tf.cast(last, tf.int64)
    starts_ok = tf.gather(place["max_context"], first, batch_dims=1)  # context tokens only
    ends_ok = tf.gather(place["in_context"], last, batch_dims=1)
    i, j = first[:, :, None], last[:, None, :]
    valid = (
        starts_ok[:, :, None] & ends_ok[:, None, :] & (j >= i) & (j - i + 1 <= s.max_answer_length)
    )
    start_value = tf.cast(tf.gather(start_logits, first, batch_dims=1), tf.float64)
    end_value = tf.cast(tf.gather(end_logits, last, batch_dims=1), tf.float64)
    score = start_value[:, :, None] + end_value[:, None, :]
    score = tf.reshape(tf.where(valid, score, -float("inf")), [tf.shape(score)[0], -1])
    feature_best = tf.reduce_max(score, axis=-1)
    pair = _first(score == feature_best[:, None], axis=-1)  # start rank * top + end rank
    # A window without a span: the lowest float64, which the segment max of
    # an example starts from (-inf would never equal it).
    none = tf.float64.min
    feature_best = tf.where(tf.reduce_any(valid, axis=[1, 2]), feature_best, none)

    examples = tf.size(w["count"])
    feature = tf.range(tf.size(w["example"], out_type=tf.int64), dtype=tf.int64)
    best = tf.math.unsorted_segment_max(feature_best, w["example"], examples)
    chosen = _first_of_segment(feature_best == tf.gather(best, w["example"]), feature, w, examples)
    pair = tf.gather(pair, chosen)
    a, c = pair // top, pair % top
    span = {
        "feature": chosen,
        "first": tf.gather_nd(first, tf.stack([chosen, a], -1)),
        "last": tf.gather_nd(last, tf.stack([chosen, c], -1)),
        "score": best,
        "found": best > none,
    }
    span["start_logit"] = tf.cast(
        tf.gather_nd(start_logits, tf.stack([chosen, span["first"]], -1)), tf.float64
    )
    span["end_logit"] = tf.cast(
        tf.gather_nd(end_logits, tf.stack([chosen, span["last"]], -1)), tf.float64
    )
    null = tf.cast(start_logits[:, 0], tf.float64) + tf.cast(end_logits[:, 0], tf.float64)
    smallest = tf.math.unsorted_segment_min(null, w["example"], examples)
    null_feature = _first_of_segment(
        null == tf.gather(smallest, w["example"]), feature, w, examples
    )
    span["null_start"] = tf.cast(tf.gather(start_logits[:, 0], null_feature), tf.float64)
    span["null_end"] = tf.cast(tf.gather(end_logits[:, 0], null_feature), tf.float64)
    return span


def _first_of_segment(mask, feature, w, examples):
    """Per example: its first feature where `mask` holds."""
    import tensorflow as tf

    big = tf.size(feature, out_type=tf.int64)
    return tf.math.unsorted_segment_min(tf.where(mask, feature, big), w["example"], examples)


def _answers(best, place, w, context, starts, ends, s):
    """(answer, score) per example: the best span's text, or "" where v2.0's
    no-answer wins (or no span was found)."""
    import tensorflow as tf

    token = place["token"]
    feature = best["feature"]
    example = tf.range(tf.size(feature, out_type=tf.int64), dtype=tf.int64)
    first = tf.gather_nd(token, tf.stack([feature, best["first"]], -1))
    last = tf.gather_nd(token, tf.stack([feature, best["last"]], -1))
    found = best["found"]
    first, last = tf.where(found, first, 0), tf.where(found, last, 0)
    begin = tf.gather_nd(
        tf.pad(starts.to_tensor(), [[0, 0], [0, 1]]), tf.stack([example, first], -1)
    )
    end = tf.gather_nd(tf.pad(ends.to_tensor(), [[0, 0], [0, 1]]), tf.stack([example, last], -1))
    # The combining marks after the last token (`spans._past_marks`).
    rest = tf.strings.substr(context, end, tf.cast(tf.strings.length(context), tf.int64) - end)
    marks = tf.strings.regex_replace(rest, r"(?s)^(\p{Mn}*).*$", r"\1")
    end += tf.cast(tf.strings.length(marks), tf.int64)
    text = tf.strings.substr(context, begin, end - begin)
    null = best["null_start"] + best["null_end"]
    if s.is_v2:
        # In the reference's order of operations, as `spans.decode`.
        difference = null - best["start_logit"] - best["end_logit"]
        empty = ~found | (difference > s.null_score_threshold)
        if s.n_best_size == 1:  # the no-answer ranked first is the only entry
            empty |= null > best["score"]
        score = tf.where(empty, null, best["score"])
    else:
        empty = ~found
        score = tf.where(found, best["score"], -float("inf"))
    return tf.where(empty, "", text), tf.cast(score, tf.float32)


def _write(path, answering_path):
    import tensorflow as tf

    from trainers.bert.finetune.export import answering

    loaded = answering.load(answering_path)
    serving = _Serving(loaded.folder, loaded.model)
    module = tf.Module()
    module.tokenizer = serving.tokenizer
    module.weights = [v.value if hasattr(v, "value") else v for v in loaded.model.variables]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="question"),
            tf.TensorSpec([None], tf.string, name="context"),
        ]
    )
    def serve(question, context):
        answer, score = serving(question, context)
        return {"answer": answer, "score": score}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={SIGNATURE: serve})
    return path


def main(argv):
    if len(argv) != 3:
        sys.exit(f"usage: python -m {__name__} ANSWERING_DIR OUT")
    _write(argv[2], argv[1])


if __name__ == "__main__":
    main(sys.argv)
