"""Gin bindings nothing reads: a misspelt scope is refused, settings of
something the run does not make are noted (`settings.check_gin_bindings_used`,
called when a job's settings are made)."""

import gin
import pytest

from trainers.bert import train
from trainers.bert.errors import ConfigError

PHASES = """
train.phases = [@phase1/Phase(), @phase2/Phase()]
Phase.seq_length = 32
Phase.global_batch_size = 8
Phase.steps = 2
phase1/Phase.peak_learning_rate = 1e-3
phase2/Phase.peak_learning_rate = 5e-4
"""


@pytest.fixture
def bindings():
    gin.clear_config()
    yield lambda *lines: gin.parse_config([PHASES, *lines])
    gin.clear_config()


def test_bindings_read_through_scope_inheritance_leave_no_note(bindings):
    bindings("Phase.power = 0.5", "lamb_tf.LAMB.weight_decay = 0.02")
    settings = train.Pretraining(optimizer=gin.get_configurable("lamb_tf.LAMB"))
    assert settings.notes == []
    assert [phase.power for phase in settings.phases] == [0.5, 0.5]


def test_a_misspelt_scope_is_refused_naming_the_binding_and_the_scopes(bindings):
    bindings("phse2/Phase.warmup_steps = 1")
    with pytest.raises(ConfigError) as refused:
        train.Pretraining()
    message = str(refused.value)
    assert "phse2/Phase.warmup_steps" in message
    assert "only in 'phase1', 'phase2'" in message


def test_a_phase_left_out_of_the_list_is_refused(bindings):
    bindings("phase3/Phase.steps = 5")
    with pytest.raises(ConfigError, match="phase3/Phase.steps: no Phase is made in scope"):
        train.Pretraining()


def test_settings_of_an_optimizer_not_used_are_noted(bindings):
    # A config file's LAMB settings after --gin_param switched to LARS.
    bindings("lamb_tf.LAMB.weight_decay = 0.01", "train.optimizer = @lamb_tf.LARS")
    notes = train.Pretraining().notes
    assert notes == ["gin: lamb_tf.LAMB.weight_decay not read: this run makes no lamb_tf.LAMB"]


def test_an_unused_macro_is_noted(bindings):
    bindings("BATCH = 8")
    assert train.Pretraining().notes == ["gin: the macro BATCH is never used"]
