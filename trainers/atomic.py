"""Atomic writes: a file appears under its name whole or not at all, and
whatever was there before stays until then. Both programs use it (the data
program imports nothing from the training program): it imports nothing of
either, and TensorFlow only for object stores.

On local paths the data goes to a temporary file beside the target
(`{path}.tmp-{pid}`: the same folder, so the same file system and an atomic
rename; the process id in the name, so processes writing one target never
share a temporary file), and then:

1. the file is written, flushed and fsync'ed: the data is on disk before
   the name points at it. Without it a crash just after the rename can
   leave the new name on an empty or zero-filled file: the file system may
   commit the rename before the data.
2. it is renamed over the target (`os.replace`, atomic on POSIX): a reader
   finds the old file or the new one, never part of one.
3. the folder is fsync'ed: the rename survives a crash. A folder's entries
   are its data; without it a crash can bring back the old file (or none)
   after the caller went on as if the new one were there (a manifest that
   marks a set finished, a record that a step was done).

On object stores (any path with `://`: gs://, s3://, TensorFlow's in-process
ram://), through `tf.io.gfile`: a temporary object, renamed over the target
with overwrite. No fsync there: an object is stored when its write returns,
and objects appear whole. TensorFlow is imported on that branch only, so the
data program's local paths do not need it.

On failure (an exception inside the `with` block included) the temporary
file is removed and the target is untouched.

    write_text(path, text), write_bytes(path, data)   the whole content at once
    file(path, mode)          a file object to write a stream into (a shard)
    temporary_path(path)      a temporary path, for a writer that opens the path
                              itself (tf.io.TFRecordWriter, a checkpoint's SaveV2)
    replace(source, target)   steps 1 (fsync of the written file) to 3 alone, for
                              files the caller wrote under its own temporary names
                              and publishes later (prepare.py's `.part` shards)
"""

import contextlib
import os
import re

TEMPORARY = ".tmp-"  # in every temporary name: a cleanup finds them by it


def is_object_store(path):
    return "://" in os.fspath(path)


def temporary_name(path):
    """This process's temporary name for `path`, in the same folder."""
    return f"{os.fspath(path)}{TEMPORARY}{os.getpid()}"


_TEMPORARY_NAME = re.compile(r"(.+)" + re.escape(TEMPORARY) + r"\d+")


def target_of(path):
    """The path a temporary name (`temporary_name`) was to become, or None
    when `path` is no temporary name: what an interrupted write left."""
    match = _TEMPORARY_NAME.fullmatch(os.fspath(path))
    return match.group(1) if match else None


def write_text(path, text, encoding="utf-8"):
    """`text` to `path`, atomically; returns `path`."""
    with file(path, "w", encoding=encoding) as f:
        f.write(text)
    return path


def write_bytes(path, data):
    """`data` to `path`, atomically; returns `path`."""
    with file(path, "wb") as f:
        f.write(data)
    return path


@contextlib.contextmanager
def file(path, mode="w", encoding="utf-8"):
    """Yields a file object open on a temporary file (`mode` "w" or "wb");
    what is written becomes `path` when the block ends without an error."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}: 'w' or 'wb'")
    path = os.fspath(path)
    tmp = temporary_name(path)
    if is_object_store(path):
        import tensorflow as tf

        try:
            with tf.io.gfile.GFile(tmp, mode) as f:
                yield f
            tf.io.gfile.rename(tmp, path, overwrite=True)
        except BaseException:
            _remove_object(tmp)
            raise
        return
    try:
        with open(tmp, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _rename(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def temporary_path(path, suffixes=("",)):
    """Yields a temporary path for a writer that opens it itself; when the
    block ends without an error, `tmp + suffix` becomes `path + suffix` for
    each of `suffixes`, in their order. Several suffixes: the files a writer
    makes from one prefix (a checkpoint's data and index), the last renamed
    the one that marks them whole; a failure between two renames leaves the
    earlier ones done."""
    path = os.fspath(path)
    tmp = temporary_name(path)
    remote = is_object_store(path)
    try:
        yield tmp
        if remote:
            import tensorflow as tf

            for suffix in suffixes:
                tf.io.gfile.rename(tmp + suffix, path + suffix, overwrite=True)
        else:
            for suffix in suffixes:  # every file on disk before any name points at one
                _sync_file(tmp + suffix)
            for suffix in suffixes:
                _rename(tmp + suffix, path + suffix)
    except BaseException:
        for suffix in suffixes:
            (_remove_object if remote else _remove)(tmp + suffix)
        raise


def replace(source, target):
    """Renames `source`, a file already written, over `target`: fsync'ed
    first, its folder after (local paths), as `file` does."""
    source, target = os.fspath(source), os.fspath(target)
    if is_object_store(target):
        import tensorflow as tf

        tf.io.gfile.rename(source, target, overwrite=True)
        return target
    _sync_file(source)
    _rename(source, target)
    return target


def _rename(tmp, path):
    os.replace(tmp, path)
    _sync_folder(os.path.dirname(path))


def _sync_file(path):
    fd = os.open(path, os.O_RDONLY)  # fsync through any descriptor of the file
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder):
    if os.name == "nt":  # Windows cannot open a folder to fsync it
        return
    fd = os.open(folder or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_object(path):
    import tensorflow as tf

    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except tf.errors.OpError:
        pass  # the write's own error is the one to raise
