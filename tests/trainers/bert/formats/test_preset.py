"""A keras-hub preset folder as fine-tuning and warm starts read it: a
weights file cut short is named before any compute."""

import dataclasses
import json

import h5py
import numpy as np
import pytest

from trainers.bert.errors import ConfigError, DataError
from trainers.bert.formats import preset
from trainers.bert.model import bert as model_lib


@pytest.fixture
def folder(tmp_path):
    config = dataclasses.asdict(model_lib.preset("tiny", vocabulary_size=128))
    (tmp_path / preset.CONFIG).write_text(
        json.dumps({"class_name": "BertBackbone", "config": config})
    )
    with h5py.File(tmp_path / preset.WEIGHTS, "w") as f:
        f["kernel"] = np.zeros((256, 256), "float32")
    return tmp_path


def test_a_whole_weights_file_passes_on_to_the_tokenizer_check(folder):
    with pytest.raises(ConfigError, match="no tokenizer in the preset"):
        preset.read(str(folder))


@pytest.mark.parametrize("cut", ["half", "web page"])
def test_a_weights_file_cut_short_is_named(folder, cut):
    weights = folder / preset.WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if cut == "half" else b"<html>Not Found</html>")
    with pytest.raises(DataError, match=r"model.weights.h5 is not a whole HDF5 file .* download"):
        preset.read(str(folder))


def test_a_pretraining_runs_folder_names_its_encoder(folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    folder.rename(run / "encoder")
    with pytest.raises(
        ConfigError, match=f"a pretraining run's folder; its encoder is {run}/encoder"
    ):
        preset.read(str(run))
