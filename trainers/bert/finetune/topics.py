"""The built-in fine-tuning task, offline like the built-in pretraining data:
which of CPython's help topics a passage comes from.

Passages are two consecutive sentences of the kept help text
(`data.corpus`); the classes are the MIN_SENTENCES-or-longer topics (23
of 79), so each has passages enough to learn from; every DEV_EVERY-th
passage of a topic is held out for the dev set. Pretraining on the built-in
corpus read this text, as BERT read the Wikipedia that SQuAD's passages come
from: the task asks whether that reading helps to tell the topics apart
from few labelled passages.
"""

from trainers.bert.data.shards import corpus
from trainers.bert.finetune import glue

NAME = "pydoc_topics"
MIN_SENTENCES = 40
SENTENCES_PER_PASSAGE = 2
DEV_EVERY = 4


def _topics():
    """[(topic, sentences)] of the classes, in topic order."""
    topics = corpus.builtin_topics()
    documents = {}
    for key in sorted(topics):
        sentences = corpus.topic_sentences(topics[key])
        if len(sentences) >= MIN_SENTENCES:
            documents[key] = sentences
    return sorted(documents.items())


def examples():
    """(train, [("dev", dev examples, True)]) as `glue.Example`s."""
    train, dev = [], []
    for label, (topic, sentences) in enumerate(_topics()):
        for p, start in enumerate(range(0, len(sentences) - 1, SENTENCES_PER_PASSAGE)):
            text = " ".join(sentences[start : start + SENTENCES_PER_PASSAGE])
            split = dev if p % DEV_EVERY == DEV_EVERY - 1 else train
            split.append(glue.Example(f"{topic}:{p}", (text,), label))
    return train, [("dev", dev, True)]


def task():
    """The task's definition, in the form of a GLUE task."""
    labels = tuple(topic for topic, _ in _topics())
    return glue.Task(NAME, NAME, ("passage",), "topic", labels, ("accuracy",))
