import os
import stat
import subprocess
import sys
import types

import pytest

from trainers import atomic


def _read(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def fsyncs(monkeypatch):
    """os.fsync's calls, each as (is a folder, inode, what `target` held
    then): the order of file, rename and folder, seen from outside."""
    recorded = types.SimpleNamespace(calls=[], target=None)
    real = os.fsync

    def fsync(fd):
        status = os.fstat(fd)
        held = _read(recorded.target) if recorded.target else None
        recorded.calls.append((stat.S_ISDIR(status.st_mode), status.st_ino, held))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return recorded


def test_writes_the_content(tmp_path):
    assert atomic.write_text(tmp_path / "a.txt", "héllo\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic.write_bytes(str(tmp_path / "a.txt"), b"\x00\x01")  # over the old one
    assert (tmp_path / "a.txt").read_bytes() == b"\x00\x01"
    with atomic.file(tmp_path / "b.bin", "wb") as f:
        for _ in range(3):
            f.write(b"chunk")
    assert (tmp_path / "b.bin").read_bytes() == b"chunk" * 3
    with atomic.temporary_path(str(tmp_path / "c")) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and atomic.TEMPORARY in tmp
        with open(tmp, "w") as f:
            f.write("by a writer of its own")
    assert (tmp_path / "c").read_text() == "by a writer of its own"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c"]


@pytest.mark.parametrize("shape", ["file", "temporary_path", "several_files"])
def test_a_failure_leaves_the_target_and_no_temporary(tmp_path, shape):
    old = {"t": b"old \x00 bytes", "t.index": b"old index"}
    for name, data in old.items():
        (tmp_path / name).write_bytes(data)
    target = str(tmp_path / "t")
    with pytest.raises(RuntimeError, match="in the middle"):
        if shape == "file":
            with atomic.file(target, "wb") as f:
                f.write(b"new, half written")
                raise RuntimeError("in the middle")
        else:
            suffixes = ("", ".index") if shape == "several_files" else ("",)
            with atomic.temporary_path(target, suffixes) as tmp:
                for suffix in suffixes:
                    with open(tmp + suffix, "wb") as f:
                        f.write(b"new")
                raise RuntimeError("in the middle")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old


def test_a_failed_fsync_leaves_the_target(tmp_path, monkeypatch):
    (tmp_path / "t").write_text("old")

    def fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        atomic.write_text(tmp_path / "t", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["t"] and (tmp_path / "t").read_text() == "old"


@pytest.mark.parametrize("shape", ["write_text", "temporary_path", "replace"])
def test_the_file_then_its_folder_are_fsynced(tmp_path, fsyncs, shape):
    target = str(tmp_path / "t")
    with open(target, "w") as f:
        f.write("old")
    fsyncs.target = target
    if shape == "write_text":
        atomic.write_text(target, "new")
    elif shape == "temporary_path":
        with atomic.temporary_path(target) as tmp:
            with open(tmp, "w") as f:  # the writer's own file object: no fsync of its
                f.write("new")
    else:
        with open(target + ".part", "w") as f:
            f.write("new")
        atomic.replace(target + ".part", target)
    file_, folder = os.stat(target).st_ino, os.stat(tmp_path).st_ino
    # The new file's data before the rename (the target still old), the
    # folder after it (the target new).
    assert fsyncs.calls == [(False, file_, b"old"), (True, folder, b"new")]


def test_several_files_are_all_on_disk_before_the_first_rename(tmp_path, fsyncs):
    target = str(tmp_path / "ckpt")
    fsyncs.target = target + ".data"
    with atomic.temporary_path(target, (".data", ".index")) as tmp:
        for suffix in (".data", ".index"):
            with open(tmp + suffix, "w") as f:
                f.write(suffix)
    files = [(False, os.stat(target + s).st_ino, None) for s in (".data", ".index")]
    folder = os.stat(tmp_path).st_ino
    assert fsyncs.calls == [*files, (True, folder, b".data"), (True, folder, b".data")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.data", "ckpt.index"]


def test_object_store_paths_go_through_tf_io_gfile():
    tf = pytest.importorskip("tensorflow")
    folder = "ram://atomic_test"
    tf.io.gfile.makedirs(folder)
    path = f"{folder}/a.json"
    atomic.write_text(path, "one")
    atomic.write_text(path, "two")  # over an existing object
    with tf.io.gfile.GFile(path) as f:
        assert f.read() == "two"
    with pytest.raises(RuntimeError):
        with atomic.file(path, "w") as f:
            f.write("half")
            raise RuntimeError("in the middle")
    with atomic.temporary_path(f"{folder}/b.tfrecord") as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            writer.write(b"record")
    assert [r.numpy() for r in tf.data.TFRecordDataset(f"{folder}/b.tfrecord")] == [b"record"]
    with tf.io.gfile.GFile(path) as f:
        assert f.read() == "two"
    assert sorted(tf.io.gfile.listdir(folder)) == ["a.json", "b.tfrecord"]


def test_local_paths_do_not_import_tensorflow(tmp_path):
    code = (
        "import sys; from trainers import atomic; "
        f"atomic.write_text({str(tmp_path / 'a')!r}, 'x'); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
    assert (tmp_path / "a").read_text() == "x"


def test_a_temporary_name_tells_its_target(tmp_path):
    target = str(tmp_path / "pretrain-00000-of-00002.tfrecord")
    assert atomic.target_of(atomic.temporary_name(target)) == target
    assert atomic.target_of(target) is None
    assert atomic.target_of(f"{target}{atomic.TEMPORARY}") is None  # no process id
