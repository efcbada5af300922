"""The corpus command (tools/prepare_corpus.py) as a user runs it: without
the [corpus] extra, one line naming the package an input needs and the
install, exit status 2, before the output folder is made; an input that is
plainly not text, a dump cut short or an index of another dump, one line
and exit status 1, with no shard of it that looks finished; a run that
works writes nothing on stderr, and a note for a file whose name says
otherwise than its content."""

import pytest

from tests.conftest import requires
from tests.scripts import assert_one_line, run_process, without
from tests.trainers.bert.data.text import wiki_dump
from trainers import stack

CORPUS = stack.install_command(["corpus"])
# Enough for the content to say the format; the package check comes before
# anything is read further.
CONTENT = {
    "a.txt": b"Plain text.\n",
    "books.parquet": b"PAR1 and the rest",
}


@pytest.mark.parametrize(
    "name, hidden, needs",
    [
        ("a.txt", ["sentencex"], "splitting text into sentences needs sentencex"),
        ("books.parquet", ["pyarrow"], "books.parquet (Parquet) needs pyarrow"),
        # The whole extra missing: the first package named installs it all.
        ("books.parquet", ["sentencex", "pyarrow"], "needs sentencex"),
    ],
)
def test_a_missing_package_is_named_before_the_output_is_made(tmp_path, name, hidden, needs):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / name).write_bytes(CONTENT[name])
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


def _other_xml(path):
    path.write_text('<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>\n')
    return "looks like XML (starts with '<?xml'), not plain text; --format=wiki reads MediaWiki"


def _cut_dump(path):
    wiki_dump.write(str(path), wiki_dump.articles(60), streams=4)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    size = len(data) * 6 // 10
    return (
        f"cut short: its bz2 data ends before the end-of-stream marker, after {size:,} of its "
        f"{size:,} bytes were read; the "
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, make", [("corpus.xml", _other_xml), (wiki_dump.PART_FILE, _cut_dump)]
)
def test_an_input_that_cannot_be_read_is_one_line_and_no_finished_shard(tmp_path, name, make):
    inputs = tmp_path / "in"
    inputs.mkdir()
    says = make(inputs / name)
    out = tmp_path / "out"
    stderr = run_process(
        "tools/prepare_corpus.py",
        f"--input={inputs}",
        f"--output_dir={out}",
        "--shard_mb=0.002",  # the cut dump: shards written before the cut, then removed
        expect_status=1,
    )
    assert_one_line(stderr, f"bert-prepare-corpus: error: {inputs / name}: {says}")
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.slow
def test_a_run_that_works_writes_nothing_on_stderr(tmp_path):
    requires("sentencex", "corpus")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text("Paris is in France. It is large.\n")
    wiki_dump.write(str(inputs / wiki_dump.PART_FILE))
    wiki_dump.write(str(inputs / "dump.xml"), compression="bz2")  # the name says otherwise
    stdout, stderr = run_process(
        "tools/prepare_corpus.py",
        f"--input={inputs}",
        f"--output_dir={tmp_path / 'out'}",
        with_stderr=True,
    )
    assert stderr == "" and stdout.splitlines()[-1].startswith("3 documents, "), stdout
    notes = [line for line in stdout.splitlines() if line.startswith("note: ")]
    assert notes == [
        f"note: {inputs / 'dump.xml'}: its content is bz2-compressed, its name says "
        "uncompressed; read by its content"
    ]


@pytest.mark.slow
def test_an_index_of_another_dump_is_one_line_before_any_output(tmp_path):
    dump = wiki_dump.write_multistream(tmp_path)
    (tmp_path / "other").mkdir()
    wiki_dump.write_multistream(tmp_path / "other", pages_per_stream=7)  # other stream offsets
    index = tmp_path / "other" / wiki_dump.MULTISTREAM_INDEX
    out = tmp_path / "out"
    stderr = run_process(
        "tools/prepare_corpus.py",
        f"--input={dump}",
        f"--index={index}",
        "--range_mb=0.01",  # cut in 4: the cuts are checked against the index
        f"--output_dir={out}",
        expect_status=1,
    )
    assert_one_line(
        stderr,
        f"bert-prepare-corpus: error: {index}: the index of another dump than {dump}: it places "
        "page ",
        "and no bz2 stream of pages starts there",
    )
    assert not out.exists()
