"""Pretraining instances: sentence pairs for next-sentence prediction, and
masked-LM targets, following google-research/bert's create_pretraining_data.

One difference, for memory that stays flat as the corpus grows: the "random
next" segment comes from a bounded window of recently read documents
(`random_next_window`), where the original tool draws from the whole corpus
held in memory.
"""

import collections
import dataclasses
import random

Instance = collections.namedtuple(
    "Instance", "input_ids segment_ids is_random_next masked_lm_positions masked_lm_ids"
)


@dataclasses.dataclass(frozen=True)
class Options:
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    do_whole_word_mask: bool = False
    random_next_window: int = 1000

    def __post_init__(self):
        checks = [
            ("max_seq_length", self.max_seq_length >= 5),
            ("max_predictions_per_seq", self.max_predictions_per_seq >= 1),
            ("masked_lm_prob", 0.0 < self.masked_lm_prob < 1.0),
            ("short_seq_prob", 0.0 <= self.short_seq_prob <= 1.0),
            ("dupe_factor", self.dupe_factor >= 1),
            ("random_next_window", self.random_next_window >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"Invalid --{name}: {getattr(self, name)!r}")

    def targets_wanted(self):
        """The masked-LM targets of a full-length instance at `masked_lm_prob`,
        before the cap `max_predictions_per_seq` (as `mask_tokens` counts)."""
        return max(1, int(round(self.max_seq_length * self.masked_lm_prob)))

    def check_room(self):
        """ValueError when `max_predictions_per_seq` is more than an instance
        has tokens to mask (a mistake, e.g. the two lengths swapped; the
        records would carry slots that are never used)."""
        room = self.max_seq_length - 3  # [CLS] A [SEP] B [SEP]
        if self.max_predictions_per_seq > room:
            raise ValueError(
                f"--max_predictions_per_seq={self.max_predictions_per_seq} is more than the "
                f"{room} tokens an instance of --max_seq_length={self.max_seq_length} holds "
                "besides [CLS] and two [SEP] (were the two swapped?); at most "
                f"{self.targets_wanted()} are masked there (--masked_lm_prob="
                f"{self.masked_lm_prob}): set --max_predictions_per_seq={self.targets_wanted()}"
            )

    def masking_note(self):
        """A line saying when `max_predictions_per_seq` masks fewer tokens of
        a full-length instance than `masked_lm_prob` asks, else None."""
        wanted = self.targets_wanted()
        if self.max_predictions_per_seq >= wanted:
            return None
        share = self.max_predictions_per_seq / self.max_seq_length
        return (
            f"note: --max_predictions_per_seq={self.max_predictions_per_seq} masks at most "
            f"{share:.1%} of a {self.max_seq_length}-token instance, not the "
            f"--masked_lm_prob={self.masked_lm_prob} ({wanted} tokens); "
            f"--max_predictions_per_seq={wanted} masks them all (google-research/bert: 20 "
            "for 128 tokens, 80 for 512)"
        )


def document_instances(document, others, vocab, options, rng):
    """Yields the instances of one document (a list of sentences, each a list
    of token ids). `others` holds other documents for random next segments."""
    max_tokens = options.max_seq_length - 3  # [CLS] A [SEP] B [SEP]
    target = max_tokens
    if rng.random() < options.short_seq_prob:
        target = rng.randint(2, max_tokens)

    chunk, chunk_length, i = [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if i == len(document) - 1 or chunk_length >= target:
            if chunk:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for s in chunk[:a_end] for t in s]
                tokens_b, is_random_next = [], False
                if others and (len(chunk) == 1 or rng.random() < 0.5):
                    is_random_next = True
                    other = others[rng.randrange(len(others))]
                    start = rng.randrange(len(other))
                    for sentence in other[start:]:
                        tokens_b.extend(sentence)
                        if len(tokens_b) >= target - len(tokens_a):
                            break
                    # The unused segments go back for the next instance.
                    i -= len(chunk) - a_end
                else:
                    tokens_b = [t for s in chunk[a_end:] for t in s]
                _truncate_pair(tokens_a, tokens_b, max_tokens, rng)
                if tokens_a and tokens_b:
                    yield _instance(tokens_a, tokens_b, is_random_next, vocab, options, rng)
            chunk, chunk_length = [], 0
            target = max_tokens
            if rng.random() < options.short_seq_prob:
                target = rng.randint(2, max_tokens)
        i += 1


def _truncate_pair(tokens_a, tokens_b, max_tokens, rng):
    """Drops tokens from the front or back of the longer one, at random."""
    while len(tokens_a) + len(tokens_b) > max_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _instance(tokens_a, tokens_b, is_random_next, vocab, options, rng):
    input_ids = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    input_ids, positions, labels = mask_tokens(input_ids, vocab, options, rng)
    return Instance(input_ids, segment_ids, is_random_next, positions, labels)


def mask_tokens(input_ids, vocab, options, rng):
    """Chooses masked-LM targets: about `masked_lm_prob` of the tokens (at
    most `max_predictions_per_seq`), whole words together if asked; each
    becomes [MASK] 80% of the time, a random token 10%, itself 10%.

    Returns (masked ids, positions, original ids at those positions)."""
    words = []  # groups of positions that form one word
    after_special = True
    for position, token in enumerate(input_ids):
        if token in (vocab.cls_id, vocab.sep_id):
            after_special = True
            continue
        # A segment cut mid-word starts with a "##" piece: a word of its own.
        if options.do_whole_word_mask and not after_special and vocab.is_continuation[token]:
            words[-1].append(position)
        else:
            words.append([position])
        after_special = False
    rng.shuffle(words)
    num_to_predict = min(
        options.max_predictions_per_seq,
        max(1, int(round(len(input_ids) * options.masked_lm_prob))),
    )
    chosen = []
    for word in words:
        if len(chosen) >= num_to_predict:
            break
        if len(chosen) + len(word) > num_to_predict:
            continue  # a whole word that does not fit is skipped, not split
        chosen.extend(word)
    chosen.sort()
    output = list(input_ids)
    for position in chosen:
        draw = rng.random()
        if draw < 0.8:
            output[position] = vocab.mask_id
        elif draw < 0.9:
            output[position] = int(vocab.ordinary_ids[rng.randrange(len(vocab.ordinary_ids))])
    return output, chosen, [input_ids[p] for p in chosen]


def shard_instances(documents, vocab, options, shard, num_shards, seed):
    """All instances of one shard: documents i with i % num_shards == shard,
    `dupe_factor` passes with different masks. Reads `documents()` (a
    callable returning a fresh iterator of sentence lists) once per pass and
    keeps only a window of recent documents in memory."""
    rng = random.Random(f"{seed}:{shard}:{num_shards}")
    for _ in range(options.dupe_factor):
        window = collections.deque(maxlen=options.random_next_window)
        for index, sentences in enumerate(documents()):
            if index % num_shards != shard:
                continue
            document = [s for s in vocab.encode(sentences) if s]
            if not document:
                continue
            yield from document_instances(document, list(window), vocab, options, rng)
            window.append(document)
