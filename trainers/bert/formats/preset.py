"""A keras-hub BERT preset folder (the pretraining trainer's `encoder/`, or
any local keras-hub BERT preset), as fine-tuning and a warm start read it:
checked before any compute: its shape, its weights file, and a tokenizer
(the preset's, or a given vocabulary) whose size and casing agree with it."""

import dataclasses
import os

from trainers.bert.errors import ConfigError, DataError, read_json
from trainers.bert.formats.tokenizer import Tokenizer
from trainers.bert.model import bert as model_lib

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.weights.h5", "tokenizer.json"
PRESET_VOCABULARY = os.path.join("assets", "tokenizer", "vocabulary.txt")


@dataclasses.dataclass(frozen=True)
class Encoder:
    path: str
    config: model_lib.BertConfig
    tokenizer: Tokenizer

    @property
    def weights(self):
        return os.path.join(self.path, WEIGHTS)


def read(path, vocab_file=None, lowercase=None):
    """The preset at `path`, with its tokenizer: the preset's own
    (`tokenizer.json`, `assets/tokenizer/vocabulary.txt`) unless
    `vocab_file` is given; `lowercase` (None: the preset's setting, else
    True) must agree with the vocabulary's casing."""
    where = f"encoder {path}"
    if not os.path.isdir(path):
        raise ConfigError(f"{where}: no such folder (give a keras-hub BERT preset folder)")
    if not os.path.exists(os.path.join(path, CONFIG)):
        inner = os.path.join(path, "encoder")
        if os.path.exists(os.path.join(inner, CONFIG)):  # a pretraining run's model_dir
            raise ConfigError(f"{where}: a pretraining run's folder; its encoder is {inner}")
        raise ConfigError(f"{where}: no {CONFIG} (not a keras-hub preset folder)")
    config = read_json(os.path.join(path, CONFIG), "encoder", ConfigError)
    if config.get("class_name") != "BertBackbone":
        raise ConfigError(
            f"{where}: {CONFIG} describes a {config.get('class_name')!r}, not a BertBackbone"
        )
    fields = {f.name for f in dataclasses.fields(model_lib.BertConfig)}
    values = config.get("config", {})
    missing = sorted(fields - set(values))
    if missing:
        raise ConfigError(f"{where}: {CONFIG} lacks {missing}")
    bert_config = model_lib.BertConfig(**{k: values[k] for k in fields})
    if not os.path.exists(os.path.join(path, WEIGHTS)):
        raise ConfigError(f"{where}: no {WEIGHTS}")
    _check_weights_file(os.path.join(path, WEIGHTS), where)
    preset_lowercase = None
    if os.path.exists(os.path.join(path, TOKENIZER)):
        tokenizer_config = read_json(os.path.join(path, TOKENIZER), "encoder", ConfigError)
        preset_lowercase = tokenizer_config.get("config", {}).get("lowercase")
    if vocab_file is None:
        vocab_file = os.path.join(path, PRESET_VOCABULARY)
        if not os.path.exists(vocab_file):
            raise ConfigError(
                f"{where}: no tokenizer in the preset ({PRESET_VOCABULARY}): give its "
                "vocabulary (vocab_file)"
            )
    elif not os.path.exists(vocab_file):
        raise ConfigError(f"vocab_file {vocab_file}: no such file")
    if lowercase is None:
        lowercase = True if preset_lowercase is None else bool(preset_lowercase)
    elif preset_lowercase is not None and bool(preset_lowercase) != lowercase:
        raise ConfigError(
            f"{where}: its tokenizer has lowercase={bool(preset_lowercase)}, "
            f"lowercase={lowercase} was given"
        )
    tokenizer = Tokenizer(vocab_file, lowercase)
    if len(tokenizer) != bert_config.vocabulary_size:
        raise ConfigError(
            f"{where}: its embedding has {bert_config.vocabulary_size} rows, the vocabulary "
            f"{vocab_file} {len(tokenizer)} tokens: not the encoder's vocabulary"
        )
    return Encoder(path, bert_config, tokenizer)


def _check_weights_file(weights, where):
    """The weights file opens as HDF5 before any compute: a download cut
    short (or a web page saved under its name) would otherwise fail once
    the model is built, after the data is made."""
    import h5py

    try:
        with h5py.File(weights, "r"):
            pass
    except OSError as error:
        raise DataError(
            f"{where}: {WEIGHTS} is not a whole HDF5 file ({error}); an interrupted download? "
            "Download or copy the preset again"
        ) from None
