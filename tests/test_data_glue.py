"""GLUE reader and submission writer, on small files laid out exactly like the official GLUE files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from paddlefunnel.data.glue import GLUE_SUBMISSION_FILES, GLUE_TASKS, glue_task, read_glue, write_glue_predictions

# Headers and rows as the official GLUE download leaves them (tab-separated, unquoted).
MNLI_HEAD = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
             "sentence2_parse\tsentence1\tsentence2")
STSB_HEAD = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
# task dir, file, text -> expected (text_a, text_b, label, index) of the first row
FILES: dict[tuple[str, str], tuple[str, str, str, tuple]] = {
    ("CoLA", "train"): ("CoLA", "train.tsv", "gj04\t1\t\tOur friends won't buy this.\nclc95\t0\t*\tThey "
                        "drank the pub.\n", ("Our friends won't buy this.", None, "1", None)),
    ("CoLA", "dev"): ("CoLA", "dev.tsv", "gj04\t0\t*\tThe \"quote is kept.\n", ('The "quote is kept.', None, "0",
                                                                               None)),
    ("CoLA", "test"): ("CoLA", "test.tsv", "index\tsentence\n0\tBill whistled.\n", ("Bill whistled.", None, None, 0)),
    ("SST-2", "train"): ("SST-2", "train.tsv", "sentence\tlabel\nhide new secretions \t0\n",
                         ("hide new secretions ", None, "0", None)),
    ("SST-2", "test"): ("SST-2", "test.tsv", "index\tsentence\n7\tuneasy mishmash .\n",
                        ("uneasy mishmash .", None, None, 7)),
    ("MRPC", "train"): ("MRPC", "train.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                        "1\t702876\t702977\tAmrozi accused \"his brother\" .\tReferring to him .\n",
                        ('Amrozi accused "his brother" .', "Referring to him .", "1", None)),
    ("MRPC", "test"): ("MRPC", "test.tsv", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n3\t1089874\t1089925\tA\tB\n",
                       ("A", "B", None, 3)),
    ("STS-B", "dev"): ("STS-B", "dev.tsv", f"{STSB_HEAD}\tscore\n0\tmain-captions\tMSRvid\t2012test\t0000\tnone\t"
                       "none\tA man with a hard hat is dancing.\tA man wearing a hard hat is dancing.\t5.000\n",
                       ("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 5.0, None)),
    ("STS-B", "test"): ("STS-B", "test.tsv", f"{STSB_HEAD}\n0\tmain-news\theadlines\t2016\t0001\tnone\tnone\tX\tY\n",
                        ("X", "Y", None, 0)),
    ("QQP", "train"): ("QQP", "train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                       "133273\t213221\t213222\tHow is the life?\tHow is life?\t1\n",
                       ("How is the life?", "How is life?", "1", None)),
    ("QQP", "test"): ("QQP", "test.tsv", "id\tquestion1\tquestion2\n0\tWhy?\tHow?\n", ("Why?", "How?", None, 0)),
    ("MNLI", "train"): ("MNLI", "train.tsv", f"{MNLI_HEAD}\tlabel1\tgold_label\n0\t31193\t31193n\tgovernment\t( ( "
                        "x ) )\t( y )\t(ROOT x)\t(ROOT y)\tConceptually cream skimming.\tProduct and geography.\t"
                        "neutral\tneutral\n", ("Conceptually cream skimming.", "Product and geography.", "neutral",
                                               None)),
    ("MNLI", "dev_matched"): ("MNLI", "dev_matched.tsv", f"{MNLI_HEAD}\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t"
                              "gold_label\n0\t63735\t63735n\tslate\tp\th\tp\th\tThe new rights.\tEveryone really "
                              "likes.\tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n",
                              ("The new rights.", "Everyone really likes.", "neutral", None)),
    ("MNLI", "dev_mismatched"): ("MNLI", "dev_mismatched.tsv", f"{MNLI_HEAD}\tlabel1\tlabel2\tlabel3\tlabel4\t"
                                 "label5\tgold_label\n0\t75290\t75290c\tletters\tp\th\tp\th\tYour gift.\tBad gift."
                                 "\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\t"
                                 "contradiction\n", ("Your gift.", "Bad gift.", "contradiction", None)),
    ("MNLI", "test_matched"): ("MNLI", "test_matched.tsv", f"{MNLI_HEAD}\n5\t31\t31n\tgov\tp\th\tp\th\tA\tB\n",
                               ("A", "B", None, 5)),
    ("MNLI", "test_mismatched"): ("MNLI", "test_mismatched.tsv", f"{MNLI_HEAD}\n6\t31\t31n\tgov\tp\th\tp\th\tC\tD\n",
                                  ("C", "D", None, 6)),
    ("QNLI", "dev"): ("QNLI", "dev.tsv", "index\tquestion\tsentence\tlabel\n0\tWhat came into force?\tThe law.\t"
                      "not_entailment\n", ("What came into force?", "The law.", "not_entailment", None)),
    ("QNLI", "test"): ("QNLI", "test.tsv", "index\tquestion\tsentence\n0\tQ?\tS.\n", ("Q?", "S.", None, 0)),
    ("RTE", "train"): ("RTE", "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tNo weapons.\tWeapons.\t"
                       "entailment\n", ("No weapons.", "Weapons.", "entailment", None)),
    ("WNLI", "dev"): ("WNLI", "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tThe drain is clogged.\tThe hair "
                      "is clogged.\t0\n", ("The drain is clogged.", "The hair is clogged.", "0", None)),
    ("AX", "test"): ("diagnostic", "diagnostic.tsv", "index\tsentence1\tsentence2\n0\tThe cat sat.\tThe cat did "
                     "not sit.\n", ("The cat sat.", "The cat did not sit.", None, 0)),
}


def write(root: Path, directory: str, name: str, text: str) -> Path:
    path = root / directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("task", "split"), list(FILES))
def test_reads_the_official_layout(tmp_path: Path, task: str, split: str) -> None:
    directory, name, text, expected = FILES[task, split]
    write(tmp_path, directory, name, text)
    examples = read_glue(tmp_path, task, split)
    first = examples[0]
    assert (first.text_a, first.text_b, first.label, first.index) == expected
    assert examples.skipped == [] and examples.label_list == GLUE_TASKS[task].labels
    assert len({ex.guid for ex in examples}) == len(examples)


def test_cola_has_no_header_so_every_line_is_an_example(tmp_path: Path) -> None:
    directory, name, text, _ = FILES["CoLA", "train"]
    write(tmp_path, directory, name, text)
    examples = read_glue(tmp_path, "cola", "train")
    assert [ex.label for ex in examples] == ["1", "0"]


def test_task_specs_cover_glue() -> None:
    assert set(GLUE_TASKS) == {"CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI", "AX"}
    assert set(GLUE_TASKS["MNLI"].splits) == {"train", "dev_matched", "dev_mismatched", "test_matched",
                                              "test_mismatched"}
    assert sorted(GLUE_SUBMISSION_FILES) == sorted(["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv",
                                                    "MNLI-m.tsv", "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv",
                                                    "AX.tsv"])
    assert glue_task("sts-b").is_regression and glue_task("stsb").num_labels == 1
    assert glue_task("mnli").label_id("neutral") == 2 and glue_task("diagnostic").name == "AX"
    with pytest.raises(ValueError, match="unknown GLUE task 'squad'"):
        glue_task("squad")


# ---------------------------------------------------------------------------------------------- errors
def test_missing_paths_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="GLUE data directory .*nowhere"):
        read_glue(tmp_path / "nowhere", "rte", "train")
    with pytest.raises(FileNotFoundError, match="task directory .*RTE"):
        read_glue(tmp_path, "rte", "train")
    (tmp_path / "RTE").mkdir()
    with pytest.raises(FileNotFoundError, match=r"RTE train file .*RTE/train.tsv"):
        read_glue(tmp_path, "rte", "train")
    with pytest.raises(ValueError, match="MNLI has no split 'dev'; expected one of train, dev_matched"):
        read_glue(tmp_path, "mnli", "dev")


def test_malformed_rows_name_file_line_and_expectation(tmp_path: Path) -> None:
    head = "index\tsentence1\tsentence2\tlabel\n"
    path = write(tmp_path, "RTE", "dev.tsv", head + "0\ta\tb\tentailment\n1\ta\tb\n")
    with pytest.raises(ValueError, match=rf"{path}, line 3: expected 4 tab-separated columns, found 3"):
        read_glue(tmp_path, "rte", "dev")
    write(tmp_path, "RTE", "dev.tsv", head + "0\ta\tb\tmaybe\n")
    with pytest.raises(ValueError, match=r"line 2: label 'maybe' is not one of RTE's labels "
                                         r"\['entailment', 'not_entailment'\]"):
        read_glue(tmp_path, "rte", "dev")
    write(tmp_path, "STS-B", "train.tsv", f"{STSB_HEAD}\tscore\n0\tg\tf\ty\t0\tn\tn\ta\tb\thigh\n")
    with pytest.raises(ValueError, match="line 2: label 'high' is not a number"):
        read_glue(tmp_path, "sts-b", "train")
    write(tmp_path, "STS-B", "train.tsv", f"{STSB_HEAD}\tscore\n0\tg\tf\ty\t0\tn\tn\ta\tb\t5.5\n")
    with pytest.raises(ValueError, match=r"label '5.5' is outside STS-B's range \[0.0, 5.0\]"):
        read_glue(tmp_path, "sts-b", "train")
    write(tmp_path, "QNLI", "test.tsv", "index\tquestion\tsentence\nx1\tq\ts\n")
    with pytest.raises(ValueError, match="line 2: index 'x1' in column 1 is not an integer"):
        read_glue(tmp_path, "qnli", "test")


def test_header_of_another_task_is_rejected(tmp_path: Path) -> None:
    # an RTE file where QNLI is expected: same column count, different names
    write(tmp_path, "QNLI", "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(ValueError, match="line 1: header .* is not that of QNLI train.*'question'"):
        read_glue(tmp_path, "qnli", "train")


def test_skip_bad_rows_counts_and_reports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "QQP", "dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
          "1\t1\t2\ta\tb\t0\n2\t3\t4\tbroken row\n3\t5\t6\tc\td\t7\n4\t7\t8\te\t\t1\n")
    with caplog.at_level(logging.WARNING, logger="paddlefunnel.data"):
        examples = read_glue(tmp_path, "qqp", "dev", skip_bad_rows=True)
    assert [ex.text_a for ex in examples] == ["a", "e"]
    assert examples[1].text_b == ""  # an empty question is data, not an error (QQP has some)
    # line 1 is the header: the short row is line 3, the bad label (7) line 4
    assert [(row.line, "columns" in row.reason) for row in examples.skipped] == [(3, True), (4, False)]
    assert "skipped 2 of 4 rows" in caplog.text and "dev.tsv" in caplog.text


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "SST-2", "train.tsv", "sentence\tlabel\n\n")
    with pytest.raises(ValueError, match="SST-2 train holds no examples"):
        read_glue(tmp_path, "sst-2", "train")
    write(tmp_path, "SST-2", "train.tsv", "sentence\tlabel\nonly one column\n")
    with pytest.raises(ValueError, match=r"all 1 rows were malformed"):
        read_glue(tmp_path, "sst-2", "train", skip_bad_rows=True)


# ------------------------------------------------------------------------------------------ submission
def read_submission(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_write_predictions_classification(tmp_path: Path) -> None:
    path = write_glue_predictions(tmp_path, "QNLI", [0, 1, 2], np.array([1, 0, 1]))
    assert path == tmp_path / "QNLI.tsv"
    assert read_submission(path) == [["index", "prediction"], ["0", "not_entailment"], ["1", "entailment"],
                                     ["2", "not_entailment"]]
    path = write_glue_predictions(tmp_path, "CoLA", [4, 5], ["1", "0"])
    assert read_submission(path)[1:] == [["4", "1"], ["5", "0"]]


def test_write_predictions_mnli_and_ax_names(tmp_path: Path) -> None:
    assert write_glue_predictions(tmp_path, "MNLI-m", [0], [0]).name == "MNLI-m.tsv"
    assert write_glue_predictions(tmp_path, "mnli", [0], [2], split="test_mismatched").name == "MNLI-mm.tsv"
    assert read_submission(tmp_path / "MNLI-mm.tsv")[1] == ["0", "neutral"]
    assert write_glue_predictions(tmp_path, "ax", [0], ["entailment"]).name == "AX.tsv"
    with pytest.raises(ValueError, match="several test sets; pass split="):
        write_glue_predictions(tmp_path, "mnli", [0], [0])


def test_write_predictions_regression_round_trips(tmp_path: Path) -> None:
    values = np.array([0.25, 4.123456789, 3.0], dtype=np.float64)
    path = write_glue_predictions(tmp_path, "sts-b", [0, 1, 2], values)
    assert [float(row[1]) for row in read_submission(path)[1:]] == values.tolist()


def test_write_predictions_rejects_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 indices but 1 predictions"):
        write_glue_predictions(tmp_path, "rte", [0, 1], [0])
    with pytest.raises(ValueError, match=r"predictions\[1\] = 2: label id out of range 0..1"):
        write_glue_predictions(tmp_path, "rte", [0, 1], [0, 2])
    with pytest.raises(ValueError, match=r"predictions\[0\] = 'yes' is not one of"):
        write_glue_predictions(tmp_path, "rte", [0], ["yes"])
    with pytest.raises(ValueError, match=r"indices\[1\] = 0 occurs twice"):
        write_glue_predictions(tmp_path, "rte", [0, 0], [0, 1])
    with pytest.raises(ValueError, match=r"predictions\[0\] = 'x': expected a number"):
        write_glue_predictions(tmp_path, "sts-b", [0], ["x"])
    assert list(tmp_path.iterdir()) == []
