"""Strategy choice from the flags, and errors for impossible combinations."""

import json

import pytest
import tensorflow as tf

from trainers.bert.engines.tf_engine.strategies import make_strategy
from trainers.bert.errors import ConfigError


def test_auto_on_a_cpu_is_the_default_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert make_strategy("auto") is tf.distribute.get_strategy()


def test_mirrored_uses_the_logical_cpus_without_gpus():
    assert make_strategy("mirrored").num_replicas_in_sync == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "mirrored", "tpu": "local"}, "--tpu='local' cannot run with --strategy"),
        ({"strategy": "tpu"}, "--strategy=tpu needs --tpu"),
        ({"strategy": "magic"}, "--strategy='magic': choose one of"),
        ({"strategy": "multi_worker"}, "needs TF_CONFIG"),
    ],
)
def test_impossible_combinations_are_named(kwargs, message, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError) as error:
        make_strategy(**kwargs)
    assert message in str(error.value)


def test_bad_tf_config_is_named(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        make_strategy("auto")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"task": {}}))
    with pytest.raises(ConfigError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")
