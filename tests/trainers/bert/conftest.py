import pytest

from trainers.bert.data.shards import corpus, create, instances, vocab


@pytest.fixture(scope="session")
def builtin_vocab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vocab")
    return vocab.train_vocabulary(corpus.builtin_documents(), str(folder), vocab_size=4096)


@pytest.fixture(scope="session")
def builtin_data(tmp_path_factory, builtin_vocab):
    """Shards from the built-in corpus, whole-word masking on."""
    folder = tmp_path_factory.mktemp("data")
    options = instances.Options(dupe_factor=2, do_whole_word_mask=True)
    manifest = create.create(
        corpus.BUILTIN, str(folder), options, vocab_file=builtin_vocab, num_shards=2
    )
    return folder, manifest
