"""The corpus command (tools/prepare_corpus.py) as a user runs it: without
the [corpus] extra, one line naming the package an input needs and the
install, exit status 2, before the output folder is made; a run that works
writes nothing on stderr."""

import pytest

from tests.conftest import requires
from tests.scripts import assert_one_line, run_process, without
from trainers import stack

CORPUS = stack.install_command(["corpus"])


@pytest.mark.parametrize(
    "name, hidden, needs",
    [
        ("a.txt", ["sentencex"], "splitting text into sentences needs sentencex"),
        ("enwiki.xml.bz2", ["mwparserfromhell"], "enwiki.xml.bz2 (a MediaWiki dump) needs "),
        ("books.parquet", ["pyarrow"], "books.parquet (Parquet) needs pyarrow"),
        # The whole extra missing: the first package named installs it all.
        ("books.parquet", ["sentencex", "mwparserfromhell", "pyarrow"], "needs sentencex"),
    ],
)
def test_a_missing_package_is_named_before_the_output_is_made(tmp_path, name, hidden, needs):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / name).write_bytes(b"not read: the check comes first")
    out = tmp_path / "out"
    stderr = run_process(
        "tools/prepare_corpus.py",
        f"--input={inputs}",
        f"--output_dir={out}",
        expect_status=2,
        env=without(tmp_path / "site", *hidden),
    )
    assert_one_line(stderr, "bert-prepare-corpus: error: ", needs, "which is not installed")
    assert stderr.rstrip().endswith(CORPUS), stderr
    assert not out.exists()


def test_the_format_flag_decides_what_is_needed(tmp_path):
    (tmp_path / "dump.txt").write_text("<mediawiki/>")
    stderr = run_process(
        "tools/prepare_corpus.py",
        f"--input={tmp_path / 'dump.txt'}",
        "--format=wiki",
        f"--output_dir={tmp_path / 'out'}",
        expect_status=2,
        env=without(tmp_path / "site", "mwparserfromhell"),
    )
    assert_one_line(stderr, "dump.txt (a MediaWiki dump) needs mwparserfromhell", CORPUS)


@pytest.mark.slow
def test_a_run_that_works_writes_nothing_on_stderr(tmp_path):
    requires("sentencex", "corpus")
    (tmp_path / "a.txt").write_text("Paris is in France. It is large.\n")
    stdout, stderr = run_process(
        "tools/prepare_corpus.py",
        f"--input={tmp_path / 'a.txt'}",
        f"--output_dir={tmp_path / 'out'}",
        with_stderr=True,
    )
    assert stderr == "" and "1 documents, 2 sentences" in stdout
