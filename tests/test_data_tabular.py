"""Generic CSV / TSV / JSONL reader for the user's own classification and regression data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from paddlefunnel.data.tabular import detect_format, read_tabular


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_pair_classification_with_quoting(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", 'a,b,y\n"hello, world",there,pos\nfoo,"say ""hi""",neg\n')
    examples = read_tabular(path, ["a", "b"], "y")
    assert [(ex.text_a, ex.text_b, ex.label) for ex in examples] == [("hello, world", "there", "pos"),
                                                                      ("foo", 'say "hi"', "neg")]
    assert examples.label_list == ("neg", "pos")  # alphabetical, not file order
    assert examples[0].guid == "line-2"


def test_tsv_is_unquoted(tmp_path: Path) -> None:
    path = write(tmp_path / "dev.tsv", 'text\tlabel\n"quoted" stays\t1\n')
    examples = read_tabular(path, "text", "label")
    assert examples[0].text_a == '"quoted" stays' and examples[0].text_b is None


def test_jsonl_labels_of_any_json_scalar(tmp_path: Path) -> None:
    rows = [{"t": "a", "y": 10}, {"t": "b", "y": 2}, {"t": "c", "y": 2}, {"t": "d", "y": 1}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    examples = read_tabular(path, "t", "y")
    assert examples.label_list == ("1", "2", "10")  # all integers: numeric order
    assert [ex.label for ex in examples] == ["10", "2", "2", "1"]
    flags = write(tmp_path / "f.jsonl", '{"t": "a", "y": true}\n{"t": "b", "y": false}\n')
    assert read_tabular(flags, "t", "y").label_list == ("false", "true")


def test_label_list_from_train_checks_dev(tmp_path: Path) -> None:
    train = read_tabular(write(tmp_path / "train.csv", "t,y\na,x\nb,z\n"), "t", "y")
    dev = read_tabular(write(tmp_path / "dev.csv", "t,y\nc,z\n"), "t", "y", label_list=train.label_list)
    assert dev.label_list == ("x", "z")
    write(tmp_path / "dev.csv", "t,y\nc,z\nd,w\n")
    with pytest.raises(ValueError, match=r"dev.csv, line 3: label 'w' in field 'y' is not one of \['x', 'z'\]"):
        read_tabular(tmp_path / "dev.csv", "t", "y", label_list=train.label_list)


def test_regression_and_unlabelled(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "id,t,score\nq7,a,0.5\nq8,b,-2\n")
    examples = read_tabular(path, "t", "score", task="regression", id_column="id")
    assert [(ex.guid, ex.label) for ex in examples] == [("q7", 0.5), ("q8", -2.0)]
    assert examples.label_list is None
    unlabelled = read_tabular(path, "t")
    assert [ex.label for ex in unlabelled] == [None, None] and unlabelled.label_list is None
    write(tmp_path / "r.csv", "t,score\na,inf\n")
    with pytest.raises(ValueError, match=r"line 2: label field 'score' is 'inf', expected a finite number"):
        read_tabular(tmp_path / "r.csv", "t", "score", task="regression")
    write(tmp_path / "r.csv", "t,score\na,lots\n")
    with pytest.raises(ValueError, match=r"line 2: label field 'score' is 'lots', expected a number"):
        read_tabular(tmp_path / "r.csv", "t", "score", task="regression")


def test_errors_name_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "text,label\nok,1\ntoo,many,fields\n")
    with pytest.raises(ValueError, match=r"a.csv, line 3: expected 2 fields like the header, found 3"):
        read_tabular(path, "text", "label")
    with pytest.raises(ValueError, match=r"a.csv, line 1: no column 'sentence' in the header; the columns are "
                                         r"\['text', 'label'\]"):
        read_tabular(path, "sentence", "label")
    write(tmp_path / "b.jsonl", '{"t": "a", "y": 1}\n{"t": "b", "y": \n')
    with pytest.raises(ValueError, match=r"b.jsonl, line 2: invalid JSON at column"):
        read_tabular(tmp_path / "b.jsonl", "t", "y")
    write(tmp_path / "b.jsonl", '{"t": "a"}\n')
    with pytest.raises(ValueError, match=r"b.jsonl, line 1: no label field 'y'"):
        read_tabular(tmp_path / "b.jsonl", "t", "y")
    write(tmp_path / "b.jsonl", '{"t": 3, "y": 1}\n')
    with pytest.raises(ValueError, match=r"line 1: field 't' is 3, expected a string"):
        read_tabular(tmp_path / "b.jsonl", "t", "y")
    write(tmp_path / "b.jsonl", '[1, 2]\n')
    with pytest.raises(ValueError, match=r"line 1: expected a JSON object, got list"):
        read_tabular(tmp_path / "b.jsonl", "t", "y")
    write(tmp_path / "c.csv", "t,y\na,\n")
    with pytest.raises(ValueError, match=r"line 2: label field 'y' is empty"):
        read_tabular(tmp_path / "c.csv", "t", "y")
    write(tmp_path / "e.csv", "")
    with pytest.raises(ValueError, match="the file is empty"):
        read_tabular(tmp_path / "e.csv", "t", "y")
    write(tmp_path / "h.csv", "t,y\n")
    with pytest.raises(ValueError, match="h.csv: no examples"):
        read_tabular(tmp_path / "h.csv", "t", "y")
    with pytest.raises(FileNotFoundError, match="data file .*missing.csv does not exist"):
        read_tabular(tmp_path / "missing.csv", "t", "y")


def test_argument_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "t,y\na,1\n")
    with pytest.raises(ValueError, match="expected one or two column names"):
        read_tabular(path, ["a", "b", "c"], "y")
    with pytest.raises(ValueError, match="task 'ranking' is unknown"):
        read_tabular(path, "t", "y", task="ranking")
    with pytest.raises(ValueError, match=r"cannot tell the format from the extension '.json'"):
        detect_format(tmp_path / "x.json")
    assert detect_format(tmp_path / "x.json", "jsonl") == "jsonl" and detect_format("X.TSV") == "tsv"
    data = write(tmp_path / "data.txt", "t\ty\na\t1\n")
    assert read_tabular(data, "t", "y", format="tsv")[0].label == "1"


def test_skip_bad_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "s.jsonl", '{"t": "a", "y": "p"}\nnot json\n{"t": "b"}\n{"t": "c", "y": "q"}\n')
    with caplog.at_level(logging.WARNING, logger="paddlefunnel.data"):
        examples = read_tabular(path, "t", "y", skip_bad_rows=True)
    assert [ex.text_a for ex in examples] == ["a", "c"]
    assert [row.line for row in examples.skipped] == [2, 3]
    assert "skipped 2 of 4 rows" in caplog.text
