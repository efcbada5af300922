"""Dynamic re-masking: the recipe's statistics, whole words, reproducibility."""

import numpy as np
import pytest

from trainers.bert.data import patterns
from trainers.bert.data.input import pipeline, remask
from trainers.bert.data.shards import vocab


@pytest.fixture(scope="module")
def setup(builtin_data):
    folder, _ = builtin_data
    v = vocab.Vocabulary(str(folder / "vocab.txt"))
    files = patterns.match_files(str(folder / "*.tfrecord"))
    return v, files


def _batches(files, remasker, n=20, seed=0):
    dataset = pipeline.make_dataset(
        files, 128, 20, batch_size=16, shuffle=False, seed=seed, remasker=remasker
    )
    return [{k: b[k].numpy() for k in b} for b in dataset.take(n)]


def _original(batch):
    tokens = batch["token_ids"].copy()
    for row, (ps, ids, ws) in enumerate(
        zip(batch["masked_lm_positions"], batch["masked_lm_ids"], batch["masked_lm_weights"])
    ):
        for p, t, w in zip(ps, ids, ws):
            if w:
                tokens[row, p] = t
    return tokens


@pytest.mark.parametrize("whole_word", [False, True])
def test_new_masks_follow_the_recipe(setup, whole_word):
    v, files = setup
    stored = _batches(files, None)
    fresh = _batches(files, remask.Remasker(v, whole_word=whole_word))
    tokens = masked = 0
    outcome = {"mask": 0, "random": 0, "same": 0}
    changed = False
    for old, new in zip(stored, fresh):
        original = _original(old)
        np.testing.assert_array_equal(_original(new), original)  # same text underneath
        changed |= not np.array_equal(new["masked_lm_positions"], old["masked_lm_positions"])
        tokens += old["padding_mask"].sum()
        masked += new["masked_lm_weights"].sum()
        for row in range(len(original)):
            for p, w in zip(new["masked_lm_positions"][row], new["masked_lm_weights"][row]):
                if not w:
                    continue
                assert original[row, p] not in (v.cls_id, v.sep_id, v.pad_id)
                now, was = new["token_ids"][row, p], original[row, p]
                outcome["mask" if now == v.mask_id else "same" if now == was else "random"] += 1
            positions = new["masked_lm_positions"][row][new["masked_lm_weights"][row] > 0]
            assert list(positions) == sorted(positions)
    assert changed
    assert 0.12 < masked / tokens < 0.16
    total = sum(outcome.values())
    assert abs(outcome["mask"] / total - 0.8) < 0.03
    assert abs(outcome["random"] / total - 0.1) < 0.03


def test_whole_words_are_never_split(setup):
    v, files = setup
    splits_seen = 0
    for batch in _batches(files, remask.Remasker(v, whole_word=True)):
        original = _original(batch)
        for row in range(len(original)):
            chosen = set(batch["masked_lm_positions"][row][batch["masked_lm_weights"][row] > 0])
            ids = original[row]
            for p in chosen:
                if v.is_continuation[ids[p]] and ids[p - 1] not in (v.cls_id, v.sep_id):
                    assert p - 1 in chosen
                if p + 1 < len(ids) and v.is_continuation[ids[p + 1]]:
                    assert p + 1 in chosen
                    splits_seen += 1
    assert splits_seen > 20


def test_reproducible_and_new_each_batch(setup):
    v, files = setup
    a = _batches(files, remask.Remasker(v), n=4)
    b = _batches(files, remask.Remasker(v), n=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["masked_lm_positions"], y["masked_lm_positions"])
    c = _batches(files, remask.Remasker(v), n=4, seed=1)
    assert any(
        not np.array_equal(x["masked_lm_positions"], z["masked_lm_positions"]) for x, z in zip(a, c)
    )
