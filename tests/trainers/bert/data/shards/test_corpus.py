import json

import pytest

from trainers.bert.data.shards import corpus


def test_split_sentences():
    text = "LAMB scales. It works at batch 65536!  Does it?  Yes: 76 minutes."
    assert corpus.split_sentences(text) == [
        "LAMB scales.",
        "It works at batch 65536!",
        "Does it?",
        "Yes: 76 minutes.",
    ]


def test_reads_bert_format_and_splits_paragraphs(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("First doc, one line.\nSecond line. With two sentences.\n\n\nOther doc.\n")
    docs = list(corpus.read_documents(corpus.input_files(str(tmp_path / "*.txt"))))
    assert docs == [
        ["First doc, one line.", "Second line.", "With two sentences."],
        ["Other doc."],
    ]


def test_builtin_corpus_needs_no_download():
    docs = list(corpus.builtin_documents())
    assert len(docs) > 50
    assert sum(len(s) for d in docs for s in d) > 300_000


def test_unmatched_pattern_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"No files match the pattern '.*nothing\*\.txt'"):
        corpus.input_files(f"{tmp_path}/nothing*.txt")


def test_the_corpus_tools_sentences_are_not_split_again(tmp_path):
    """Lines of text the corpus tool made (its manifest lists the file) are
    sentences as its segmenter found them; other text's lines are split."""
    line = "Dr. Smith measured the trust ratio. It stayed near one.\n"
    for name in ("00000-wiki-00000.txt", "mine.txt"):
        (tmp_path / name).write_text(line)
    manifest = {"shards": ["00000-wiki-00000.txt"], "segmenter": "sentencex (en)"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    prepared, mine = (
        list(corpus.read_documents([str(tmp_path / name)]))
        for name in ("00000-wiki-00000.txt", "mine.txt")
    )
    assert prepared == [["Dr. Smith measured the trust ratio. It stayed near one."]]
    assert mine == [["Dr.", "Smith measured the trust ratio.", "It stayed near one."]]
