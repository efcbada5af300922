"""A new user's mistakes with the data tool, each named in one line before
anything is written (or said in one line where the output is still right):
inputs that are not text, vocabularies of other formats, lengths that do
not fit, a vocabulary smaller than asked."""

import gzip
import json
import random

import pytest

from tests.scripts import run_process
from trainers.bert.data.shards import corpus, create, instances, vocab
from trainers.bert.data.text import wiki_sample
from trainers.bert.errors import ConfigError, DataError

SMALL = instances.Options(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
PROSE = "\n\n".join(
    "\n".join(f"Sentence {s} of document {d} is about layer adaptation." for s in range(6))
    for d in range(4)
)


def _create(input_file, out, vocab_file=None, options=SMALL, **kwargs):
    return create.create(input_file, str(out), options, vocab_file, num_workers=1, **kwargs)


# ------------------------------------------------------------------- inputs


PAGE = wiki_sample.page("Layer adaptation", "'''Layer adaptation''' scales each step.")
PREPARE = r"not plain text: tools/prepare_corpus.py makes plain text .* from it$"


def _dump(compression):
    """A one-page MediaWiki dump's bytes."""

    def write(path):
        wiki_sample.write(str(path), [PAGE], compression=compression)
        return path.read_bytes()

    return write


@pytest.mark.parametrize(
    "content, named",
    [
        (
            gzip.compress(PROSE.encode(), mtime=0),
            r"is gzip-compressed text, not plain text: decompress it",
        ),
        (b"\x00\x01binary\x00" * 100, r"looks like binary data \(NUL bytes"),
        (PROSE.encode("utf-16"), r"looks like binary data \(NUL bytes.*UTF-16"),
        (("Ça déjà été très âgé. " * 200).encode("latin-1"), r"looks like text in another .*iconv"),
        # What the corpus tool reads: a dump as downloaded or decompressed.
        (_dump("bz2"), "is a MediaWiki dump, bz2-compressed, " + PREPARE),
        (_dump("none"), "is a MediaWiki dump, " + PREPARE),
        (b'{"text": "Layer adaptation."}\n' * 3, "is JSON lines, " + PREPARE),
        # The corpus tool's manifest, which DIR/* matches beside its shards.
        (json.dumps({"documents": 3, "files": []}, indent=1).encode(), "looks like a JSON doc"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "looks like HTML"),
    ],
    ids=["gzip", "binary", "utf16", "latin1", "dump.bz2", "dump", "jsonl", "manifest", "html"],
)
def test_input_that_is_not_text_is_named_before_anything_is_written(
    tmp_path, builtin_vocab, content, named
):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content if isinstance(content, bytes) else content(tmp_path / "made"))
    with pytest.raises(DataError, match=named) as raised:
        _create(str(path), tmp_path / "out", builtin_vocab, num_shards=1)
    assert str(path) in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_a_stray_bad_byte_in_a_large_text_is_read_on(tmp_path, builtin_vocab):
    path = tmp_path / "corpus.txt"
    path.write_bytes(PROSE.encode() + b"\n\xff\n" + PROSE.encode())
    assert corpus.check_text([str(path)]) == []


def test_a_folder_or_a_glob_matching_nothing_is_named(tmp_path, builtin_vocab):
    (tmp_path / "texts").mkdir()
    with pytest.raises(DataError, match=r"is a folder; give its text files, e.g. --input_file="):
        _create(str(tmp_path / "texts"), tmp_path / "out", builtin_vocab)
    with pytest.raises(DataError, match=r"^--input_file: No files match the pattern '.*nothing"):
        _create(str(tmp_path / "nothing*.txt"), tmp_path / "out", builtin_vocab)


def test_empty_input_files_among_others_are_said(tmp_path, builtin_vocab, capsys):
    (tmp_path / "a.txt").write_text(PROSE)
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "c.txt").write_text("\n \n")
    _create(str(tmp_path / "*.txt"), tmp_path / "out", builtin_vocab, num_shards=2)
    out = capsys.readouterr().out
    assert "note: 2 of the 3 input files hold no text and add nothing: 2 files ('" in out


# ------------------------------------------------------------------ lengths


def test_more_predictions_than_tokens_is_refused(tmp_path, builtin_vocab):
    (tmp_path / "a.txt").write_text(PROSE)
    swapped = instances.Options(max_seq_length=20, max_predictions_per_seq=128)
    with pytest.raises(
        ValueError,
        match=r"--max_predictions_per_seq=128 is more than the 17 tokens an instance of "
        r"--max_seq_length=20 holds .*were the two swapped.*set --max_predictions_per_seq=3",
    ):
        _create(str(tmp_path / "a.txt"), tmp_path / "out", builtin_vocab, swapped)
    assert not (tmp_path / "out").exists()


def test_a_cap_below_the_masking_rate_is_said(tmp_path, builtin_vocab, capsys):
    assert SMALL.masking_note() is None and instances.Options().masking_note() is None
    (tmp_path / "a.txt").write_text(PROSE)
    capped = instances.Options(max_seq_length=64, max_predictions_per_seq=5, dupe_factor=1)
    _create(str(tmp_path / "a.txt"), tmp_path / "out", builtin_vocab, capped, num_shards=1)
    assert (
        "note: --max_predictions_per_seq=5 masks at most 7.8% of a 64-token instance, not the "
        "--masked_lm_prob=0.15 (10 tokens); --max_predictions_per_seq=10 masks them all"
    ) in capsys.readouterr().out


def test_shard_counts_and_names_are_checked(tmp_path, builtin_vocab):
    (tmp_path / "a.txt").write_text(PROSE)
    with pytest.raises(ConfigError, match=r"--num_shards=0: give 1 or more"):
        _create(str(tmp_path / "a.txt"), tmp_path / "out", builtin_vocab, num_shards=0)
    twice = [str(tmp_path / "out" / "a.tfrecord")] * 2
    with pytest.raises(ConfigError, match=r"--output_file names a shard twice"):
        _create(str(tmp_path / "a.txt"), tmp_path / "out", builtin_vocab, output_files=twice)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------- vocabularies


SPECIALS = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"


@pytest.mark.parametrize(
    "content, named",
    [
        # A SentencePiece model: a protobuf of pieces and float scores.
        (b"\n\x0b\n\x05<unk>\x15\x00\x00\x00\x00\x18\x02\n\x0c\n\x06\xe2\x96\x81the\x15"
         b"\x9a\x99Y\xc0", "binary, not UTF-8 text|binary \\(it holds NUL bytes"),
        (json.dumps({"model": {"type": "WordPiece", "vocab": {"[PAD]": 0}}}).encode(),
         r"a JSON file \(a Hugging Face tokenizer.json or vocab.json\?\)"),
        ("<unk>\t0\n<s>\t0\n</s>\t0\n\u2581the\t-3.1\n\u2581a\t-3.9\n".encode(),
         r"token<TAB>score lines \(a SentencePiece .vocab\?\)"),
        (b"", "it is empty"),
        (gzip.compress(SPECIALS.encode(), mtime=0), "a gzip file"),
    ],
    ids=["sentencepiece_model", "tokenizer_json", "sentencepiece_vocab", "empty", "gzip"],
)  # fmt: skip
def test_a_vocabulary_of_another_format_is_named(tmp_path, content, named):
    path = tmp_path / "vocab.model"
    path.write_bytes(content)
    (tmp_path / "a.txt").write_text(PROSE)
    with pytest.raises(ConfigError, match=f"vocabulary {path} is not a WordPiece vocab.txt: "):
        _create(str(tmp_path / "a.txt"), tmp_path / "out", str(path))
    with pytest.raises(ConfigError, match=named):
        vocab.read_tokens(str(path))
    assert not (tmp_path / "out").exists()


def test_a_vocabulary_without_the_special_tokens_is_named(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<unk>\nthe\n")
    with pytest.raises(ConfigError, match=r"lacks the special tokens \['\[PAD\]'.*one a line"):
        vocab.Vocabulary(str(path))


def test_a_cased_vocabulary_needs_cased_data(tmp_path, builtin_vocab):
    cased = tmp_path / "cased.txt"
    cased.write_text(open(builtin_vocab).read() + "Paris\nLondon\n")
    (tmp_path / "a.txt").write_text(PROSE)
    with pytest.raises(ConfigError, match=r"is cased .* set --do_lower_case=False"):
        _create(str(tmp_path / "a.txt"), tmp_path / "out", str(cased))
    with pytest.raises(ConfigError, match=r"is uncased .* set --do_lower_case=True"):
        _create(str(tmp_path / "a.txt"), tmp_path / "out", builtin_vocab, do_lower_case=False)
    assert not (tmp_path / "out").exists()


def test_a_vocabulary_of_another_format_on_the_command_line(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"vocab": {"[PAD]": 0}}}))
    stderr = run_process(
        "-m",
        "trainers.bert.data",
        f"--vocab_file={path}",
        f"--output_dir={tmp_path / 'out'}",
        expect_status=2,
    )
    assert stderr == (
        f"bert-create-pretraining-data: error: vocabulary {path} is not a WordPiece vocab.txt: "
        "a JSON file (a Hugging Face tokenizer.json or vocab.json?); give "
        "google-research/bert's format, one token a line with [PAD], [UNK], [CLS], [SEP] and "
        "[MASK] among them\n"
    )
    assert not (tmp_path / "out").exists()


# ------------------------------------------------- a vocabulary smaller than asked


def _few_words(path):
    """Text of 18 words, repeated: a vocabulary of some 120 tokens."""
    rng = random.Random(0)
    words = (
        "the quick brown fox jumps over lazy dog layer adaptation scales large batch "
        "training with lamb optimizer"
    ).split()
    documents = [
        "\n".join(
            " ".join(rng.choice(words) for _ in range(12)).capitalize() + "." for _ in range(6)
        )
        for _ in range(20)
    ]
    path.write_text("\n\n".join(documents) + "\n")
    return str(path)


def test_a_vocabulary_smaller_than_asked_is_said(tmp_path):
    text = _few_words(tmp_path / "few.txt")
    said = []
    path = vocab.train_vocabulary(
        corpus.read_documents([text]), str(tmp_path / "v"), 8192, report=said.append
    )
    size = len(vocab.read_tokens(path))
    assert 105 <= size < 200
    assert said == [
        f"note: the trained vocabulary has {size} tokens, not the 8192 asked (--vocab_size): "
        f"'{text}' has only 18 distinct words (18 of them seen twice or more, as WordPiece "
        f"needs to learn a piece) and 27 distinct characters; the model's vocabulary size "
        f"follows vocab.txt ({size}), and more text gives more tokens"
    ]
    assert vocab.read_tokens(path)[:5] == vocab.SPECIAL_TOKENS
    assert [p.name for p in (tmp_path / "v").iterdir()] == ["vocab.txt"]  # no temporary file
    said.clear()
    vocab.train_vocabulary(
        corpus.read_documents([text]), str(tmp_path / "w"), size, report=said.append
    )
    assert said == []  # as many as asked: nothing to say


def test_the_data_tool_says_it_on_its_output(tmp_path, capsys):
    text = _few_words(tmp_path / "few.txt")
    manifest = _create(text, tmp_path / "out", num_shards=2)
    out = capsys.readouterr().out
    assert f"note: the trained vocabulary has {manifest['vocab_size']} tokens, not the 8192" in out
    assert manifest["trained_vocab_size"] == 8192


def test_command_line_mistakes_name_their_fix(tmp_path, builtin_vocab):
    """A glob the shell expanded (extra arguments), and --vocab_only into a
    folder whose finished set was made with its vocab.txt."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(PROSE)
    stderr = run_process(
        "-m", "trainers.bert.data", "--input_file", str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"), f"--output_dir={tmp_path / 'out'}", expect_status=2,
    )  # fmt: skip
    assert stderr.count("\n") == 1 and "quote a glob so the shell does not expand it" in stderr
    out = tmp_path / "set"
    _create(str(tmp_path / "a.txt"), out, builtin_vocab, num_shards=1)
    before = (out / "vocab.txt").read_bytes()
    stderr = run_process(
        "-m", "trainers.bert.data", "--vocab_only", f"--input_file={tmp_path / 'a.txt'}",
        f"--output_dir={out}", expect_status=2,
    )  # fmt: skip
    assert stderr == (
        f"bert-create-pretraining-data: error: --vocab_only: {out} holds a finished set "
        "(manifest.json) made with its vocab.txt; train the vocabulary into another "
        "--output_dir, or add --overwrite to replace it\n"
    )
    assert (out / "vocab.txt").read_bytes() == before
