"""The standard-library docstring corpus, on a library written by the test."""

import hashlib
import textwrap

from trainers.bert.data.shards import docstrings

SECOND = "Another paragraph that is long enough to be kept."
LONG = "This sentence has more than eight words in it, surely. And a second one follows here."


def _library(root):
    files = {
        "a.py": f'"""{LONG}"""\n\ndef f():\n    """Too short."""\n',
        "pkg/b.py": f'class C:\n    """{LONG}\n\n    {SECOND}"""\n',
        "pkg/broken.py": "def (:\n",
        "test/test_a.py": f'"""{LONG}"""\n',
        "site-packages/x.py": f'"""{LONG}"""\n',
    }
    files.update({f"m{i}.py": f'"""{LONG} Module {i}."""\n' for i in range(6)})
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_files_skip_test_suites_and_installed_packages(tmp_path):
    _library(tmp_path)
    names = [str(p.relative_to(tmp_path)) for p in map(_path, docstrings.module_files(tmp_path))]
    assert names[:3] == ["a.py", "m0.py", "m1.py"] and "pkg/b.py" in names
    assert not any(n.startswith(("test/", "site-packages/")) for n in names)


def _path(text):
    import pathlib

    return pathlib.Path(text)


def test_documents_keep_long_docstrings_by_sentence_and_pass_over_broken_files(tmp_path):
    _library(tmp_path)
    found = list(docstrings.documents([tmp_path / "a.py", tmp_path / "pkg" / "broken.py"]))
    assert found == [
        ["This sentence has more than eight words in it, surely.", "And a second one follows here."]
    ]
    (b,) = docstrings.documents([tmp_path / "pkg" / "b.py"])
    assert b[-1] == SECOND


def test_every_fifth_file_is_held_out_and_the_text_is_hashed(tmp_path):
    _library(tmp_path / "lib")
    train = docstrings.write(str(tmp_path / "train.txt"), "train", root=tmp_path / "lib")
    heldout = docstrings.write(str(tmp_path / "heldout.txt"), "heldout", root=tmp_path / "lib")
    # 8 files with text: a, m0..m5, pkg/b (sorted: a m0 m1 m2 m3 m4 m5 pkg/b): m3 is 5th.
    assert (train["documents"], heldout["documents"]) == (7, 1)
    assert "Module 3." in (tmp_path / "heldout.txt").read_text()
    data = (tmp_path / "train.txt").read_bytes()
    assert train["sha256"] == hashlib.sha256(data).hexdigest() and train["bytes"] == len(data)
    again = docstrings.write(str(tmp_path / "again.txt"), "train", root=tmp_path / "lib")
    assert again == train
