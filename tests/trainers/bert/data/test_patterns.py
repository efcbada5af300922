"""One file-pattern contract for the data tool and the trainer."""

import pytest

from trainers.bert.data.patterns import match_files
from trainers.bert.errors import DataError


def test_comma_separated_globs_keep_their_order_and_sort_within(tmp_path, monkeypatch):
    for name in ("b.txt", "a.txt", "z.rec"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("HOME", str(tmp_path))
    files = match_files(f"{tmp_path}/*.rec, ~/*.txt")
    assert files == [str(tmp_path / n) for n in ("z.rec", "a.txt", "b.txt")]
    assert match_files([f"{tmp_path}/a.txt", "builtin:x"], keep=("builtin:x",)) == [
        str(tmp_path / "a.txt"),
        "builtin:x",
    ]


@pytest.mark.parametrize("patterns, message", [("/nowhere/*.txt", "'/nowhere/*.txt'"), (" , ", "")])
def test_nothing_matched_is_named(patterns, message):
    with pytest.raises(DataError, match="No file") as error:
        match_files(patterns)
    assert message in str(error.value)
