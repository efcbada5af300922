"""Export folders written whole: each is made in a staging folder (beside
its destination, or a local temporary one for an object store's gs://)
and then moved or copied into place, so a write cut short leaves no
folder that looks finished."""

import os
import shutil
import tempfile

from trainers.bert.formats import export


def write_whole(path, make):
    """Calls `make(folder)` to fill a new local folder (the path of one
    that does not exist yet), then puts it at `path`, replacing an older
    one; returns `path`."""
    remote = "://" in path
    parent = tempfile.gettempdir() if remote else os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path.rstrip('/'))}-", dir=parent)
    try:
        folder = os.path.join(staging, "whole")
        make(folder)
        if remote:
            export.copy_tree(folder, path)
        else:
            if os.path.isdir(path):
                shutil.rmtree(path)
            os.replace(folder, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
