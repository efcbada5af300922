"""GLUE's readers on files in GLUE's layout, their errors, and the
submission format."""

import numpy as np
import pytest

from trainers.bert.errors import ConfigError, DataError
from trainers.bert.finetune import glue

# A row of each task's train/dev file and test file, as GLUE ships them.
FILES = {
    "cola": (None, ["gj04\t1\t\tThe sailors rode the breeze clear of the rocks.",
                    "gj04\t0\t*\tThe more books I ask to whom he will give."],
             "index\tsentence", ["0\tBill whistled past the house."]),
    "sst2": ("sentence\tlabel", ["a gorgeous film \t1", "dull \t0"],
             "index\tsentence", ["0\tit 's a charming journey ."]),
    "mrpc": ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
             ["1\t702876\t702977\tHe said so .\tHe said that .", "0\t1\t2\tA cat .\tA dog ."],
             "index\t#1 ID\t#2 ID\t#1 String\t#2 String", ["0\t1\t2\tOne .\tTwo ."]),
    "stsb": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
             "sentence2\tscore",
             ["0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane.\tA jet.\t5.000",
              "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man.\tA cat.\t0.500"],
             "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2",
             ["0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl.\tA boy."]),
    "qqp": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            ['1\t1\t2\tHow do "I" learn?\tHow can I learn?\t1', "2\t3\t4\tWhy?\tWhen?\t0"],
            "id\tquestion1\tquestion2", ["0\tWhat is it?\tWhat's that?"]),
    "mnli": ("index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\t"
             "label1\tgold_label",
             ["0\t1\t1n\tgov\t(\t(\t(\t(\tIt rains.\tIt is wet.\tentailment\tentailment",
              "1\t2\t2c\tgov\t(\t(\t(\t(\tIt rains.\tIt is dry.\tcontradiction\tcontradiction"],
             "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2",
             ["0\t1\t1\tgov\t(\t(\t(\t(\tA.\tB."]),
    "qnli": ("index\tquestion\tsentence\tlabel",
             ["0\tWho?\tHe did.\tentailment", "1\tWhen?\tA cat.\tnot_entailment"],
             "index\tquestion\tsentence", ["0\tWhy?\tBecause."]),
    "rte": ("index\tsentence1\tsentence2\tlabel",
            ["0\tA b.\tA.\tentailment", "1\tA.\tC.\tnot_entailment"],
            "index\tsentence1\tsentence2", ["0\tX.\tY."]),
    "wnli": ("index\tsentence1\tsentence2\tlabel", ["0\tI saw it.\tIt saw.\t0", "1\tA.\tB.\t1"],
             "index\tsentence1\tsentence2", ["0\tP.\tQ."]),
}  # fmt: skip


# The labels of the two rows, where not ["1", "0"].
LABELS = {
    "mnli": ["entailment", "contradiction"],
    "qnli": ["entailment", "not_entailment"],
    "rte": ["entailment", "not_entailment"],
    "wnli": ["0", "1"],
}


def _folder(tmp_path, name):
    header, rows, test_header, test_rows = FILES[name]
    task = glue.task(name)
    folder = tmp_path / task.folder
    folder.mkdir()
    lines = ([header] if header else []) + rows
    for file in ("train.tsv", *task.dev):
        (folder / file).write_text("\n".join(lines) + "\n")
    for file in task.test:
        (folder / file).write_text("\n".join([test_header, *test_rows]) + "\n")
    return task, folder


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_reader(tmp_path, name):
    task, folder = _folder(tmp_path, name)
    train = glue.read(task, str(folder / "train.tsv"))
    assert len(train) == 2 and all(len(e.texts) == len(task.texts) for e in train)
    if task.is_regression:
        assert [e.label for e in train] == [5.0, 0.5]
    else:
        assert [task.labels[e.label] for e in train] == LABELS.get(name, ["1", "0"])
    test = glue.read(task, str(folder / task.test[0]), labelled=False)
    assert test[0].guid == "0" and test[0].label is None


def test_texts_are_read_without_quoting(tmp_path):
    task, folder = _folder(tmp_path, "qqp")
    assert glue.read(task, str(folder / "train.tsv"))[0].texts[0] == 'How do "I" learn?'


def test_missing_columns_and_unknown_labels_name_file_and_line(tmp_path):
    task, folder = _folder(tmp_path, "rte")
    path = folder / "train.tsv"
    path.write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n1\tA.\tB.\n")
    with pytest.raises(DataError, match=r"train.tsv:3: 3 column\(s\), RTE needs at least 4"):
        glue.read(task, str(path))
    path.write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tneutral\n")
    with pytest.raises(DataError, match=r"train.tsv:2: label 'neutral' is not one of RTE's"):
        glue.read(task, str(path))
    with pytest.raises(DataError, match="no such file"):
        glue.read(task, str(folder / "absent.tsv"))
    with pytest.raises(ConfigError, match="choose one of"):
        glue.task("squad2")


def test_scores_and_submission(tmp_path):
    task = glue.task("mrpc")
    logits = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    assert glue.score(task, [1, 0, 0], logits) == {
        "f1": pytest.approx(2 / 3),
        "accuracy": pytest.approx(2 / 3),
    }
    examples = [glue.Example(str(i), ("a",)) for i in range(3)]
    path = glue.write_submission(task, str(tmp_path / "MRPC.tsv"), examples, logits)
    assert open(path).read() == "index\tprediction\n0\t1\n1\t0\n2\t1\n"
    stsb = glue.task("stsb")
    path = glue.write_submission(
        stsb, str(tmp_path / "STS-B.tsv"), examples, [[4.25], [1.0], [0.5]]
    )
    assert open(path).read().splitlines()[1] == "0\t4.250"


def test_test_file_is_optional(tmp_path):
    """Without test.tsv dev is scored and no predictions are written, said in
    one note; with it, as before."""
    task, folder = _folder(tmp_path, "mrpc")
    found, notes = glue.files(task, str(folder))
    assert [f[0].rsplit("/", 1)[1] for f in found] == ["train.tsv", "dev.tsv", "test.tsv"]
    assert notes == []
    (folder / "test.tsv").unlink()
    found, notes = glue.files(task, str(folder))
    assert [f[0].rsplit("/", 1)[1] for f in found] == ["train.tsv", "dev.tsv"]
    assert found[1][1:] == ("dev", found[1][2], True) and len(found[1][2]) == 2
    assert notes == [
        f"{folder} has no test.tsv: dev.tsv is scored, no test predictions (MRPC.tsv) are written"
    ]
    (folder / "dev.tsv").unlink()
    with pytest.raises(DataError, match=r"dev.tsv: no such file .* and, for test predictions"):
        glue.files(task, str(folder))
    with pytest.raises(ConfigError, match=r"finetune.data_dir .*absent: no such folder"):
        glue.files(task, str(tmp_path / "absent"))


def test_a_missing_test_file_keeps_each_submission_its_name(tmp_path, builtin_vocab):
    """MNLI without test_matched.tsv: the mismatched predictions still go to
    MNLI-mm.tsv, and the task data carries the note."""
    from trainers.bert.finetune import datasets
    from trainers.bert.formats.tokenizer import Tokenizer

    task, folder = _folder(tmp_path, "mnli")
    (folder / "test_matched.tsv").unlink()
    data = datasets.load("mnli", Tokenizer(builtin_vocab), 32, data_dir=str(folder))
    assert [s.name for s in data.splits] == ["dev_matched", "dev_mismatched", "test_mismatched"]
    assert data.notes == [
        f"{folder} has no test_matched.tsv: dev_matched.tsv and dev_mismatched.tsv are scored, "
        "no test predictions (MNLI-m.tsv) are written"
    ]
    written = data.splits[2].write({"logits": np.zeros((1, 3))}, str(tmp_path))
    assert [w.rsplit("/", 1)[1] for w in written] == ["MNLI-mm.tsv"]
    assert data.splits[0].score({"logits": np.array([[0, 1.0, 0], [1.0, 0, 0]])}) == {
        "accuracy": 1.0
    }


@pytest.mark.parametrize("name", sorted(FILES))
def test_another_tasks_folder_is_refused(tmp_path, name):
    """Every other task's folder, as GLUE names it, is refused naming both
    tasks; under a neutral name the columns and labels tell every pair apart
    but one: SST-2's files have CoLA's columns and labels."""
    task = glue.task(name)
    for other in sorted(set(FILES) - {name}):
        (tmp_path / other).mkdir()
        _, folder = _folder(tmp_path / other, other)
        with pytest.raises(ConfigError) as refused:
            glue.files(task, str(folder))
        assert f"is GLUE's {glue.task(other).folder} folder, read by finetune.task={other!r}" in (
            str(refused.value)
        )
        neutral = folder.rename(tmp_path / other / "data")
        if (name, other) == ("cola", "sst2"):
            glue.files(task, str(neutral))  # read: only the folder's name tells them apart
            continue
        with pytest.raises(DataError):
            glue.files(task, str(neutral))


def test_the_folder_of_all_tasks_is_refused_naming_the_tasks_own(tmp_path):
    for name in ("rte", "mrpc"):
        _folder(tmp_path, name)
    with pytest.raises(ConfigError, match=r"holds GLUE's task folders \(MRPC, RTE\): give .*/RTE"):
        glue.files(glue.task("rte"), str(tmp_path))
