"""Gin bindings nothing reads (`settings.check_gin_bindings_used`, called
when a job's settings are made): one typed on the command line in a scope
the run never enters is refused as a misspelling; a config file's unread
bindings and settings of something the run does not make are noted."""

import gin
import pytest

from trainers.bert import cli, settings, train
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
def config(tmp_path):
    """config(*file_lines, typed=[...]): a gin file, then --gin_param bindings."""
    path = tmp_path / "config.gin"

    def parse(*lines, typed=()):
        path.write_text("\n".join([PHASES, *lines]) + "\n")
        cli.parse_gin([str(path)], list(typed))

    gin.clear_config()
    yield parse
    gin.clear_config()
    settings.typed_on_the_command_line(set())


def test_bindings_read_through_scope_inheritance_leave_no_note(config):
    config("Phase.power = 0.5", "lamb_tf.LAMB.weight_decay = 0.02")
    made = train.Pretraining(optimizer=gin.get_configurable("lamb_tf.LAMB"))
    assert made.notes == []
    assert [phase.power for phase in made.phases] == [0.5, 0.5]


def test_a_misspelt_scope_on_the_command_line_is_refused(config):
    config(typed=["phse2/Phase.warmup_steps = 1"])
    with pytest.raises(ConfigError) as refused:
        train.Pretraining()
    message = str(refused.value)
    assert "phse2/Phase.warmup_steps: no Phase is made in scope 'phse2'" in message
    assert "only in 'phase1', 'phase2'" in message


def test_a_phase_left_out_of_the_list_on_the_command_line_is_refused(config):
    config(typed=["phase3/Phase.steps = 5"])
    with pytest.raises(ConfigError, match="phase3/Phase.steps: no Phase is made in scope"):
        train.Pretraining()


def test_a_files_phases_replaced_on_the_command_line_are_noted(config):
    # Only phase 1 of the file's two; a misspelling in the file itself is
    # noted the same way.
    config("phse2/Phase.power = 2.0", typed=["train.phases = [@phase1/Phase()]"])
    notes = train.Pretraining().notes
    assert notes == [
        "gin: phase2/Phase.peak_learning_rate not read: no Phase is made in scope 'phase2', "
        "only in 'phase1'",
        "gin: phse2/Phase.power not read: no Phase is made in scope 'phse2', only in 'phase1'",
    ]


def test_settings_of_an_optimizer_not_used_are_noted(config):
    # A config file's LAMB settings after --gin_param switched to LARS.
    config("lamb_tf.LAMB.weight_decay = 0.01", typed=["train.optimizer = @lamb_tf.LARS"])
    notes = train.Pretraining().notes
    assert notes == ["gin: lamb_tf.LAMB.weight_decay not read: this run makes no lamb_tf.LAMB"]


def test_an_unused_macro_is_noted(config):
    config("BATCH = 8")
    assert train.Pretraining().notes == ["gin: the macro BATCH is never used"]
