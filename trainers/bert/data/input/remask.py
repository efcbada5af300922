"""Dynamic masking in the input pipeline (RoBERTa-style): new masked-LM
targets every time a sequence is read, with whole-word masking as an option.

Works on any records: the masks stored in them are undone first (the stored
targets give back the original tokens), then new ones are drawn with the
recipe's rule: about `masked_lm_prob` of the tokens, at most
`max_predictions` per sequence, [MASK] 80% / random token 10% / unchanged 10%.
Whole words are taken in random order while they fit; unlike the offline
tool, the first word that does not fit ends the choice.
"""

import numpy as np
import tensorflow as tf


class Remasker:
    """`remasker(batch, seed)` -> the batch with new masks; `seed` is an
    int64 pair (the pipeline passes the batch's index, so every batch and
    every epoch gets new masks, reproducibly)."""

    def __init__(self, vocab, masked_lm_prob=0.15, max_predictions=20, whole_word=False):
        self.is_continuation = tf.constant(np.asarray(vocab.is_continuation, bool))
        self.ordinary_ids = tf.constant(np.asarray(vocab.ordinary_ids, np.int32))
        self.cls_id, self.sep_id, self.mask_id = vocab.cls_id, vocab.sep_id, vocab.mask_id
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions = max_predictions
        self.whole_word = whole_word

    def __call__(self, batch, seed):
        seed = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        tokens = _unmask(batch)
        batch_size, length = tf.shape(tokens)[0], tf.shape(tokens)[1]
        real = batch["padding_mask"] > 0
        candidate = real & (tokens != self.cls_id) & (tokens != self.sep_id)

        # Words: a "##" piece right after another candidate joins its word.
        continues = tf.gather(self.is_continuation, tokens) if self.whole_word else None
        previous = tf.pad(candidate[:, :-1], [[0, 0], [1, 0]])
        starts = candidate & ~(continues & previous) if self.whole_word else candidate
        word = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1  # word index per position
        word_score = tf.random.stateless_uniform([batch_size, length], seed[0])
        score = tf.where(candidate, tf.gather(word_score, tf.maximum(word, 0), batch_dims=1), -1.0)

        # Positions by word score, descending; a word's pieces share a score
        # and stay together in position order (stable sort).
        order = tf.argsort(score, axis=1, direction="DESCENDING", stable=True)
        sorted_candidate = tf.gather(candidate, order, batch_dims=1)
        count = tf.cumsum(tf.cast(sorted_candidate, tf.int32), axis=1)
        # For each word, the running count at its last piece.
        rows = tf.range(batch_size)[:, None] * length
        segment = tf.where(
            sorted_candidate, tf.gather(word, order, batch_dims=1) + rows, batch_size * length
        )
        word_end_count = tf.math.unsorted_segment_max(
            tf.reshape(count, [-1]), tf.reshape(segment, [-1]), batch_size * length + 1
        )[:-1]
        word_end_count = tf.reshape(word_end_count, [batch_size, length])
        n_real = tf.reduce_sum(tf.cast(real, tf.float32), axis=1)
        budget = tf.minimum(
            self.max_predictions,
            tf.maximum(1, tf.cast(tf.round(n_real * self.masked_lm_prob), tf.int32)),
        )
        ends = tf.gather(word_end_count, tf.maximum(word, 0), batch_dims=1)
        chosen = candidate & (ends <= budget[:, None])

        # 80% [MASK], 10% a random ordinary token, 10% unchanged.
        draw = tf.random.stateless_uniform([batch_size, length], seed[1])
        random_tokens = tf.gather(
            self.ordinary_ids,
            tf.random.stateless_uniform(
                [batch_size, length], seed[2], maxval=tf.size(self.ordinary_ids), dtype=tf.int32
            ),
        )
        masked = tf.where(draw < 0.8, self.mask_id, tf.where(draw < 0.9, random_tokens, tokens))
        new_tokens = tf.where(chosen, masked, tokens)

        # Targets in position order, padded to max_predictions.
        positions = tf.argsort(
            tf.where(chosen, tf.range(length)[None, :], length + tf.range(length)[None, :]),
            axis=1,
        )[:, : self.max_predictions]
        weights = tf.cast(tf.gather(chosen, positions, batch_dims=1), tf.float32)
        positions = tf.where(weights > 0, positions, 0)
        out = dict(batch)
        out["token_ids"] = new_tokens
        out["masked_lm_positions"] = positions
        out["masked_lm_ids"] = tf.where(weights > 0, tf.gather(tokens, positions, batch_dims=1), 0)
        out["masked_lm_weights"] = weights
        return out


def _unmask(batch):
    """The original tokens: stored targets written back at their positions."""
    tokens = batch["token_ids"]
    positions = batch["masked_lm_positions"]
    keep = batch["masked_lm_weights"] > 0
    rows = tf.broadcast_to(tf.range(tf.shape(tokens)[0])[:, None], tf.shape(positions))
    index = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(positions, keep)], axis=1)
    return tf.tensor_scatter_nd_update(tokens, index, tf.boolean_mask(batch["masked_lm_ids"], keep))
