"""Masking statistics and whole-word masking, on the built-in corpus."""

import random
import types

import numpy as np
import pytest

from trainers.bert.data.shards import corpus, instances, vocab


@pytest.fixture(scope="module")
def made(builtin_vocab):
    v = vocab.Vocabulary(builtin_vocab)
    options = instances.Options(dupe_factor=1, do_whole_word_mask=True)
    made = list(
        instances.shard_instances(
            corpus.builtin_documents, v, options, shard=0, num_shards=1, seed=1
        )
    )
    return v, options, made


def _original(instance):
    ids = list(instance.input_ids)
    for p, t in zip(instance.masked_lm_positions, instance.masked_lm_ids):
        ids[p] = t
    return ids


def test_masking_statistics(made):
    v, options, made = made
    tokens = sum(len(i.input_ids) for i in made)
    masked = sum(len(i.masked_lm_positions) for i in made)
    # About 15% of tokens, less where max_predictions_per_seq caps it.
    assert 0.13 < masked / tokens < 0.16
    outcome = {"mask": 0, "random": 0, "same": 0}
    for i in made:
        for p, t in zip(i.masked_lm_positions, i.masked_lm_ids):
            now = i.input_ids[p]
            outcome["mask" if now == v.mask_id else "same" if now == t else "random"] += 1
    total = sum(outcome.values())
    assert abs(outcome["mask"] / total - 0.8) < 0.02
    assert abs(outcome["random"] / total - 0.1) < 0.02
    assert abs(outcome["same"] / total - 0.1) < 0.02  # a random draw can equal the token


def test_whole_word_masking_never_splits_a_word(made):
    v, options, made = made
    split_words = 0
    for i in made:
        ids = _original(i)
        masked = set(i.masked_lm_positions)
        special = {v.cls_id, v.sep_id}
        for p in masked:
            if v.is_continuation[ids[p]] and ids[p - 1] not in special:
                assert p - 1 in masked
            if p + 1 < len(ids) and v.is_continuation[ids[p + 1]]:
                assert p + 1 in masked
                split_words += 1
    assert split_words > 100  # the corpus has multi-piece words to test on


def test_instances_are_well_formed(made):
    v, options, made = made
    assert len(made) > 500
    for i in made:
        assert len(i.input_ids) <= options.max_seq_length
        assert i.input_ids[0] == v.cls_id and i.input_ids[-1] == v.sep_id
        assert i.input_ids.count(v.sep_id) == 2 or v.sep_id in i.masked_lm_ids
        assert len(i.masked_lm_positions) <= options.max_predictions_per_seq
        assert v.cls_id not in i.masked_lm_ids and v.sep_id not in i.masked_lm_ids
    random_next = np.mean([i.is_random_next for i in made])
    assert 0.4 < random_next < 0.6


def test_without_whole_word_masking_pieces_are_masked_alone(builtin_vocab):
    v = vocab.Vocabulary(builtin_vocab)
    options = instances.Options(max_predictions_per_seq=200, masked_lm_prob=0.5)
    ids = [v.cls_id] + v.encode(["unbelievably configurable interpreters"])[0] + [v.sep_id]
    assert any(v.is_continuation[t] for t in ids)
    lone = 0
    for seed in range(50):
        _, positions, _ = instances.mask_tokens(ids, v, options, random.Random(seed))
        s = set(positions)
        lone += any(v.is_continuation[ids[p]] and p - 1 not in s for p in s)
    assert lone > 0


@pytest.mark.parametrize(
    "field, value", [("max_seq_length", 4), ("masked_lm_prob", 1.5), ("dupe_factor", 0)]
)
def test_bad_options_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        instances.Options(**{field: value})


def test_random_next_segments_come_from_the_window_of_recent_documents():
    # Document d is sentences of the one token 100 + d: with the masked
    # tokens put back, the tokens say where each segment came from.
    window, count = 3, 40
    fake = types.SimpleNamespace(
        cls_id=1, sep_id=2, mask_id=3, is_continuation=[False] * 200, ordinary_ids=[4]
    )
    fake.encode = lambda sentences: sentences
    options = instances.Options(
        max_seq_length=24, masked_lm_prob=0.01, dupe_factor=2, random_next_window=window
    )

    def documents():
        return iter([[[100 + d] * 4 for _ in range(8)] for d in range(count)])

    made = list(instances.shard_instances(documents, fake, options, shard=0, num_shards=1, seed=1))
    distances = []
    for i in made:
        ids = _original(i)
        first_sep = ids.index(fake.sep_id)
        (a,), b = set(ids[1:first_sep]), set(ids[first_sep + 1 : -1])
        if i.is_random_next:
            (other,) = b
            distances.append(a - other)
        else:
            assert b == {a}
    # Only earlier documents, and only the last `window` of them, each pass.
    assert set(distances) == {1, 2, 3}
