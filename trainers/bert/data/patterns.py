"""Comma-separated globs -> files: the one file-pattern contract of the data
tool and the trainer (local paths, `~`, and object stores such as gs://)."""

import os

import tensorflow as tf

from trainers.bert.errors import DataError


def match_files(patterns, keep=()):
    """Comma-separated globs (or a list of them) -> the matching files,
    sorted within each pattern, patterns in the order given. Names in
    `keep` (e.g. the built-in corpus) pass through unmatched.

    Raises DataError naming a pattern that matches nothing."""
    given = patterns
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    files = []
    for pattern in [p.strip() for p in patterns if p.strip()]:
        if pattern in keep:
            files.append(pattern)
            continue
        if "://" not in pattern:
            pattern = os.path.expanduser(pattern)
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise DataError(f"No files match the pattern {pattern!r}")
        files.extend(matched)
    if not files:
        raise DataError(f"No file pattern given: {given!r}")
    return files
