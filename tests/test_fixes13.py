"""Issue 13 fixes: `compare` on every checkpoint kind, decoding errors at the real line, whole option names only,
`--max-steps 0` refused, and a wrong --model failing before the vocabulary is trained."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import paddle
import pytest

from model_utils import tiny
from paddlefunnel import FunnelConfig, FunnelForSequenceClassification, FunnelModel
from paddlefunnel.cli import main
from paddlefunnel.data.glue import read_glue
from paddlefunnel.data.tabular import read_tabular
from paddlefunnel.errors import DataFormatError, InputError, WeightsError
from paddlefunnel.parity import make_reference_model

# ------------------------------------------------------------------------------------------- compare (item 3)
SEQUENCE_HEADS = ("FunnelBaseModel", "FunnelForMultipleChoice")
TOKEN_HEADS = ("FunnelModel", "FunnelForPreTraining", "FunnelForMaskedLM", "FunnelForTokenClassification",
               "FunnelForQuestionAnswering")


def _table_rows(out: str) -> dict[str, list[str]]:
    """case label -> the other cells of each table row."""
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| Funnel"):
            rows[cells[0]] = cells[1:]
    return rows


def _compare(directory: Path, capsys) -> tuple[int, dict[str, list[str]], str]:
    code = main(["compare", str(directory), "--seq-len", "10"])
    captured = capsys.readouterr()
    return code, _table_rows(captured.out), captured.out


def _assert_full_table(rows: dict[str, list[str]], saved_label: str, others: tuple[str, ...]) -> None:
    assert saved_label in rows, rows.keys()
    for head in others:
        assert head in rows, (head, rows.keys())
    for label, cells in rows.items():
        assert cells[0] != "-", f"{label} was not compared: {cells}"
        assert float(cells[0]) <= 1e-5 and float(cells[2]) <= 1e-4, (label, cells)


@pytest.mark.parametrize("num_labels", [3, 1])
def test_compare_a_transformers_sequence_classifier(tmp_path, capsys, num_labels):
    make_reference_model("FunnelForSequenceClassification", tiny(num_labels=num_labels)).save_pretrained(tmp_path)
    code, rows, out = _compare(tmp_path, capsys)
    assert code == 0, out
    _assert_full_table(rows, "FunnelForSequenceClassification (from_pretrained)", SEQUENCE_HEADS)
    if num_labels != 1:  # the multiple-choice head has one output: the checkpoint's classifier does not fit it
        assert "random (checkpoint has another shape): classifier.linear_out.bias" in out
    assert "all heads within tolerance" in out


def test_compare_a_transformers_question_answering_checkpoint(tmp_path, capsys):
    make_reference_model("FunnelForQuestionAnswering", tiny()).save_pretrained(tmp_path)
    code, rows, out = _compare(tmp_path, capsys)
    assert code == 0, out
    _assert_full_table(rows, "FunnelForQuestionAnswering (from_pretrained)", TOKEN_HEADS[:-1])


@pytest.mark.parametrize("kind", ["body", "classifier"])
def test_compare_a_paddlefunnel_layout_directory(tmp_path, capsys, kind):
    paddle.seed(0)
    if kind == "body":
        model, saved, others = FunnelModel(FunnelConfig(**tiny())), "FunnelModel", TOKEN_HEADS[1:]
    else:
        model = FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=3)))
        saved, others = "FunnelForSequenceClassification", SEQUENCE_HEADS
    model.save_pretrained(tmp_path)
    code, rows, out = _compare(tmp_path, capsys)
    assert code == 0, out
    _assert_full_table(rows, f"{saved} (from_pretrained; reference from an HF-layout copy)", others)


def test_compare_reports_a_head_that_cannot_be_compared_as_a_row(tmp_path, capsys, monkeypatch):
    from paddlefunnel import parity

    make_reference_model("FunnelBaseModel", tiny()).save_pretrained(tmp_path)
    original = parity.convert_reference_model

    def broken_for_multiple_choice(reference):
        if type(reference).__name__ == "FunnelForMultipleChoice":
            raise RuntimeError("simulated | failure")
        return original(reference)

    monkeypatch.setattr(parity, "convert_reference_model", broken_for_multiple_choice)
    code, rows, out = _compare(tmp_path, capsys)
    assert code == 0, out  # not a tolerance failure: the row says why it was not compared
    assert rows["FunnelForMultipleChoice"][:5] == ["-"] * 5
    assert "not compared: RuntimeError: simulated \\| failure" in out
    assert float(rows["FunnelForSequenceClassification"][0]) <= 1e-5


# ---------------------------------------------------------------------------------------- decoding (item 5)
BAD_BYTE = b"\xe9"
BAD = b"caf" + BAD_BYTE  # Latin-1, not UTF-8


def _lines_with_bad_byte(header: bytes, good: bytes, bad: bytes, bad_line: int, total: int) -> bytes:
    rows = [header] + [bad if number == bad_line else good for number in range(2, total + 1)]
    return b"\n".join(rows) + b"\n"


def test_glue_tsv_decoding_error_names_the_real_line(tmp_path):
    header = b"index\tsentence1\tsentence2\tlabel"
    content = _lines_with_bad_byte(header, b"0\tA man.\tA person.\tentailment",
                                   b"0\tA " + BAD + b".\tA person.\tentailment", 13, 20)
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_bytes(content)
    with pytest.raises(DataFormatError) as info:
        read_glue(tmp_path, "RTE", "train")
    in_line, in_file = len(b"0\tA caf"), content.index(BAD_BYTE)
    assert info.value.line == 13
    assert f"line 13: not UTF-8 text (byte {in_line} of the line, byte {in_file} of the file" in str(info.value)


@pytest.mark.parametrize(("name", "header", "good", "bad", "line"), [
    ("train.csv", b"text,label", b"hello,a", b"h" + BAD + b",a", 4),
    ("train.jsonl", b'{"text": "hi", "label": "a"}', b'{"text": "hello", "label": "a"}',
     b'{"text": "' + BAD + b'", "label": "a"}', 3),
])
def test_tabular_decoding_error_names_the_real_line(tmp_path, name, header, good, bad, line):
    path = tmp_path / name
    content = _lines_with_bad_byte(header, good, bad, line, 9)
    path.write_bytes(content)
    with pytest.raises(DataFormatError) as info:
        read_tabular(path, "text", "label")
    in_line, in_file = bad.index(BAD_BYTE), content.index(BAD_BYTE)
    assert info.value.line == line
    assert f"line {line}: not UTF-8 text (byte {in_line} of the line, byte {in_file} of the file" in str(info.value)


def test_decoding_error_in_a_large_file_is_not_at_line_1(tmp_path):
    """The text reader decodes 8 KiB ahead: a bad byte far down must still be found at its own line."""
    path = tmp_path / "big.csv"
    content = _lines_with_bad_byte(b"text,label", b"x" * 100 + b",a", b"y" + BAD + b",a", 300, 400)
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=r"line 300: not UTF-8"):
        read_tabular(path, "text", "label")


# -------------------------------------------------------------------------------- whole option names (item 6)
def test_option_prefixes_are_not_guessed(tmp_path, capsys):
    args = ["train", "classify", "--train-file", "t.csv", "--text-columns", "text", "--label-column", "label",
            "--model", "m", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as info:
        main(args + ["--lr", "0.1"])  # used to become --lr-schedule 0.1
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --lr 0.1" in err and "lr_schedule" not in err
    with pytest.raises(SystemExit):
        main(["compare", "--seq", "8"])  # --seq-len
    assert "unrecognized arguments: --seq" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["--vers", "demo"])  # the top parser too: not taken as --version (which exits 0)
    captured = capsys.readouterr()
    assert info.value.code == 2 and "unrecognized arguments: --vers" in captured.err and captured.out == ""


def test_every_parser_refuses_abbreviations():
    import argparse

    from paddlefunnel.cli import build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from parsers(child)

    found = list(parsers(build_parser()))
    assert len(found) > 15 and all(not p.allow_abbrev for p in found)


# ------------------------------------------------------------------------------------------ training (item 8)
def _classify_args(tmp_path: Path, model: str, *extra: str) -> list[str]:
    data = tmp_path / "train.csv"
    data.write_text("text,label\nhello world,a\nbye world,b\nfoo bar,a\nbar baz,b\n", encoding="utf-8")
    return ["train", "classify", "--train-file", str(data), "--text-columns", "text", "--label-column", "label",
            "--model", model, "--out", str(tmp_path / "run"), "--no-progress", *extra]


def test_max_steps_zero_is_refused(tmp_path, capsys):
    paddle.seed(0)
    FunnelModel(FunnelConfig(**tiny())).save_pretrained(tmp_path / "model")
    assert main(_classify_args(tmp_path, str(tmp_path / "model"), "--train-vocab", "40", "--max-steps", "0")) == 2
    err = capsys.readouterr().err
    assert "--max-steps must be a positive number" in err and "omit it to train for --epochs" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("contents", ["empty", "config only"])
def test_unusable_model_directory_fails_before_vocabulary_training(tmp_path, capsys, caplog, contents):
    model = tmp_path / "model"
    model.mkdir()
    if contents == "config only":
        FunnelConfig(**tiny()).save_pretrained(model)
    with caplog.at_level(logging.INFO, logger="paddlefunnel"):
        assert main(_classify_args(tmp_path, str(model), "--train-vocab", "40", "--max-steps", "1")) == 2
    err = capsys.readouterr().err
    assert str(model) in err and ("no config.json" in err if contents == "empty" else "no weights" in err)
    assert "WordPiece vocabulary" not in caplog.text
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------- review follow-ups
def test_squad_settings_with_an_unknown_key_name_the_file(tmp_path):
    from paddlefunnel.tasks.squad import load_settings

    (tmp_path / "squad_settings.json").write_text(json.dumps({"max_seq_length": 64, "bogus": 1}))
    with pytest.raises(InputError, match=r"squad_settings.json: unknown SQuAD settings \['bogus'\]"):
        load_settings(tmp_path)


def test_predict_text_refuses_output_file(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path), "--text", "hi", "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "--output is for --input files" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("shard", ["../outside.safetensors", 5, "sub/model.safetensors"])
def test_a_local_shard_index_names_files_beside_it_only(tmp_path, shard):
    from paddlefunnel.checkpoint import read_checkpoint

    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a.weight": shard}}))
    with pytest.raises(WeightsError, match=r"names shard .*expected a file name beside it"):
        read_checkpoint(tmp_path)


def test_vocab_train_on_a_corpus_that_is_not_utf8_names_its_line(tmp_path, capsys):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("the capital of kaldor is druma\n" * 20)
    bad.write_bytes(b"the capital of kaldor is druma\n" * 3 + b"caf\xe9 au lait\n")
    assert main(["vocab", "train", str(good), str(bad), "--vocab-size", "60", "--out", str(tmp_path / "v"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.txt, line 4: not UTF-8 text (byte 3 of the line, byte 96 of the file" in err
    assert "Traceback" not in err and not (tmp_path / "v").exists()
