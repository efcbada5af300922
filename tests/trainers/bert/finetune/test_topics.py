"""The built-in fine-tuning task's size as docs/finetuning.md and its config state
it: 23 topics, 1338 training and 435 dev passages, the most frequent topic
17% of the dev passages (what always guessing it scores)."""

import collections

from trainers.bert.finetune import topics


def test_the_built_in_task_has_the_stated_size_and_chance_level():
    train, [(name, dev, _)] = topics.examples()
    assert name == "dev"
    assert len(topics.task().labels) == 23
    assert (len(train), len(dev)) == (1338, 435)
    most_frequent = collections.Counter(e.label for e in dev).most_common(1)[0][1]
    assert round(most_frequent / len(dev), 2) == 0.17
