"""The data tool run again into a folder: another run's shards and manifest
are refused (or replaced with --overwrite), the same run's leftovers are
cleaned, and nothing is touched before the refusal."""

import json

import pytest

from tests.scripts import run_process
from trainers.bert.data import records
from trainers.bert.data.shards import create, instances
from trainers.bert.errors import ConfigError

SMALL = instances.Options(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)


def _text(path, documents=6):
    lines = [
        "\n".join(f"Sentence {s} of document {d} is about layer adaptation." for s in range(6))
        for d in range(documents)
    ]
    path.write_text("\n\n".join(lines) + "\n")
    return str(path)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _create(text, out, vocab_file, **kwargs):
    return create.create(text, str(out), SMALL, vocab_file, num_workers=1, **kwargs)


@pytest.fixture
def first_run(tmp_path, builtin_vocab):
    """A finished set of 4 shards in tmp_path/out."""
    text = _text(tmp_path / "text.txt")
    out = tmp_path / "out"
    _create(text, out, builtin_vocab, num_shards=4)
    return text, out


def test_another_num_shards_is_refused_and_nothing_is_touched(first_run, builtin_vocab):
    text, out = first_run
    before = _snapshot(out)
    with pytest.raises(ConfigError) as raised:
        _create(text, out, builtin_vocab, num_shards=2)
    assert str(raised.value) == (
        f"{out} holds manifest.json of another run (made with --num_shards=4, not 2), "
        "4 shards this run does not write (pretrain-00000-of-00004.tfrecord, "
        "pretrain-00001-of-00004.tfrecord, pretrain-00002-of-00004.tfrecord, ...); write to "
        "another --output_dir, or add --overwrite to replace them"
    )
    assert _snapshot(out) == before


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(options=instances.Options(max_seq_length=32, max_predictions_per_seq=5)),
         "--max_seq_length=64, not 32"),
        (dict(seed=7), "--random_seed=12345, not 7"),
        (dict(vocab_file="other"), "made with another --vocab_file"),
        (dict(vocab_file=None), "made with a --vocab_file, not --vocab_size=8192"),
        (dict(input_file="other"), "other --input_file files (text.txt)"),
    ],
)  # fmt: skip
def test_a_manifest_of_other_settings_is_refused(tmp_path, first_run, builtin_vocab, change, named):
    """Same shard names, other settings: the finished set is not replaced."""
    text, out = first_run
    before = _snapshot(out)
    settings = dict(input_file=text, options=SMALL, vocab_file=builtin_vocab, seed=12345)
    settings.update(change)
    if settings["vocab_file"] == "other":
        other = tmp_path / "other_vocab.txt"
        other.write_bytes(open(builtin_vocab, "rb").read() + b"lambda\n")
        settings["vocab_file"] = str(other)
    if settings["input_file"] == "other":
        settings["input_file"] = _text(tmp_path / "other.txt")
    with pytest.raises(ConfigError, match="holds manifest.json of another run") as raised:
        create.create(
            settings["input_file"],
            str(out),
            settings["options"],
            settings["vocab_file"],
            num_shards=4,
            seed=settings["seed"],
            num_workers=1,
        )
    assert named in str(raised.value)
    assert _snapshot(out) == before


def test_overwrite_replaces_the_other_run(first_run, builtin_vocab, capsys):
    text, out = first_run
    _create(text, out, builtin_vocab, num_shards=2, overwrite=True)
    assert "removed manifest.json of another run" in capsys.readouterr().out
    manifest = records.read_manifest(str(out))
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [s["file"] for s in manifest["shards"]]
    assert manifest["num_shards"] == 2


def test_an_interrupted_replace_never_looks_finished(first_run, builtin_vocab, monkeypatch):
    """--overwrite that fails after removing the old set: no manifest is
    left (the old one went first), so the folder is not taken for a set."""
    text, out = first_run

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(create, "write_shard", fail)
    with pytest.raises(KeyboardInterrupt):
        _create(text, out, builtin_vocab, num_shards=2, overwrite=True)
    assert records.read_manifest(str(out)) is None
    assert not list(out.glob("*-of-00004.tfrecord"))


def test_the_same_run_again_needs_no_flag_and_cleans_its_leftovers(first_run, builtin_vocab):
    """An interrupted run (shards, a temporary file, no manifest) resumed
    with the same settings: no refusal, the leftovers are removed."""
    text, out = first_run
    (out / "manifest.json").unlink()
    (out / "pretrain-00001-of-00004.tfrecord").unlink()
    (out / "pretrain-00001-of-00004.tfrecord.tmp-4242").write_bytes(b"half a shard")
    _create(text, out, builtin_vocab, num_shards=4)
    assert not list(out.glob("*.tmp-*"))
    assert len(records.read_manifest(str(out))["shards"]) == 4
    _create(text, out, builtin_vocab, num_shards=4)  # and once more, finished


def test_other_runs_temporary_files_are_refused(first_run, builtin_vocab):
    text, out = first_run
    (out / "pretrain-00000-of-00008.tfrecord.tmp-17").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"1 temporary file of another interrupted run \("):
        _create(text, out, builtin_vocab, num_shards=4)
    assert (out / "manifest.json").exists()


def test_a_manifest_of_another_program_or_unreadable_is_refused(tmp_path, builtin_vocab):
    text = _text(tmp_path / "text.txt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"files": 3}))  # the text preparation's
    with pytest.raises(ConfigError, match=r"manifest.json of another run \(not the data tool's\)"):
        _create(text, out, builtin_vocab, num_shards=2)
    (out / "manifest.json").write_text('{"shards": [')
    with pytest.raises(ConfigError, match=r"manifest.json of another run \(unreadable\)"):
        _create(text, out, builtin_vocab, num_shards=2)
    assert (out / "manifest.json").read_text() == '{"shards": ['


def test_array_job_tasks_share_a_folder_and_other_task_counts_are_refused(tmp_path, builtin_vocab):
    text = _text(tmp_path / "text.txt")
    out = tmp_path / "out"
    for task in (0, 1):  # each task sees the other's shards and partial manifest: one run
        _create(text, out, builtin_vocab, num_shards=4, task_index=task, num_tasks=2)
    with pytest.raises(ConfigError, match=r"manifest-task-00000-of-00002.json of another run"):
        _create(text, out, builtin_vocab, num_shards=4, task_index=0, num_tasks=3)
    assert create.merge_manifests(str(out), 2)["num_shards"] == 4


def test_command_line_refuses_keeps_the_files_then_overwrites(tmp_path, builtin_vocab):
    text = _text(tmp_path / "text.txt")
    out = tmp_path / "out"
    common = [
        "-m",
        "trainers.bert.data",
        f"--input_file={text}",
        f"--output_dir={out}",
        f"--vocab_file={builtin_vocab}",
        "--max_seq_length=64",
        "--max_predictions_per_seq=10",
        "--dupe_factor=1",
        "--num_workers=1",
    ]
    _create(text, out, builtin_vocab, num_shards=4)
    before = _snapshot(out)
    stderr = run_process(*common, "--num_shards=2", expect_status=2, timeout=300)
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(
        f"bert-create-pretraining-data: error: {out} holds manifest.json of another run "
        "(made with --num_shards=4, not 2), 4 shards this run does not write"
    )
    assert "add --overwrite to replace them" in stderr
    assert _snapshot(out) == before  # byte-identical: the old set is whole
    stdout = run_process(*common, "--num_shards=2", "--overwrite", timeout=300)
    assert "removed manifest.json of another run" in stdout
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [
        "pretrain-00000-of-00002.tfrecord",
        "pretrain-00001-of-00002.tfrecord",
    ]
