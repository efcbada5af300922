"""The jobs' settings objects: gin binds them under the jobs' names, a
keyword argument wins over a binding, and a wrong value is named with its
job before anything runs."""

import gin
import pytest

from trainers.bert.errors import ConfigError
from trainers.bert.finetune.train import FineTuning
from trainers.bert.run.phases import Phase
from trainers.bert.train import Pretraining

PHASE = Phase(
    seq_length=32, max_predictions=5, global_batch_size=8, steps=2, peak_learning_rate=1e-3
)


@pytest.fixture
def bindings():
    yield gin.parse_config
    gin.clear_config()


def test_gin_binds_the_settings_under_the_jobs_names(bindings):
    bindings(
        """
        train.steps_per_loop = 3
        train.seed = 7
        finetune.task = "pydoc_topics"
        finetune.encoder = "/somewhere/encoder"
        finetune.checkpoint_every = 5
        """
    )
    pretraining = Pretraining(phases=[PHASE], seed=2)
    assert (pretraining.steps_per_loop, pretraining.seed) == (3, 2)  # the keyword wins
    assert pretraining.loop.steps_per_loop == 3
    fine_tuning = FineTuning()
    assert (fine_tuning.task, fine_tuning.checkpoint_every) == ("pydoc_topics", 5)
    assert fine_tuning.keep_checkpoints == 1  # fine-tuning's own default, not pretraining's 3
    assert "train.steps_per_loop = 3" in gin.operative_config_str()


def test_phases_are_required(bindings):
    with pytest.raises(RuntimeError, match="phases"):
        Pretraining()


def test_whole_floats_become_integers():
    pretraining = Pretraining(phases=[PHASE], steps_per_loop=4.0, checkpoint_every=1e2)
    assert pretraining.steps_per_loop == 4 and isinstance(pretraining.steps_per_loop, int)
    assert pretraining.checkpoint_every == 100 and isinstance(pretraining.checkpoint_every, int)


@pytest.mark.parametrize(
    "job, settings, named",
    [
        (Pretraining, {"steps_per_loop": 2.5}, "train.steps_per_loop"),
        (Pretraining, {"precision": "float16"}, "train.precision"),
        (Pretraining, {"clip_norm": float("nan")}, "train.clip_norm"),
        (Pretraining, {"export": "yes"}, "train.export"),
        (Pretraining, {"peak_flops": -1.0}, "train.peak_flops"),
        (FineTuning, {"steps_per_loop": 0}, "finetune.steps_per_loop"),
        (FineTuning, {"max_non_finite_steps": 1.5}, "finetune.max_non_finite_steps"),
        (FineTuning, {"checkpoint_every": -3}, "finetune.checkpoint_every"),
        (FineTuning, {"epochs": 0}, "finetune.epochs"),
        (FineTuning, {"task": "mnli2"}, "finetune.task"),
    ],
)
def test_a_wrong_value_is_named_with_its_job(job, settings, named):
    required = {"phases": [PHASE]} if job is Pretraining else {"task": "rte", "encoder": "e"}
    with pytest.raises(ConfigError, match=rf"^{named}\b"):
        job(**{**required, **settings})
