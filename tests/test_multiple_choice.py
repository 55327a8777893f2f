"""Multiple choice: RACE and table readers, synthetic RACE data, encoding, CLI train/evaluate/predict, serving."""

import json
import math

import numpy as np
import pytest

from paddlefunnel.cli import main
from paddlefunnel.data import demo_corpus
from paddlefunnel.data.multiple_choice import ChoiceColumns, ChoiceExample, read_choice_table, read_race
from paddlefunnel.data.synthetic_race import write_synthetic_race
from paddlefunnel.errors import DataFormatError, InputError, MissingFileError, OutputExistsError
from paddlefunnel.tasks.multiple_choice import encode_choices, qa_text, resolve_lengths
from paddlefunnel.tokenizer import FunnelTokenizer

TINY_MC_MODEL = {"model_type": "funnel", "vocab_size": 300, "block_sizes": [1, 1, 1], "d_model": 32, "n_head": 2,
                 "d_head": 16, "d_inner": 64, "num_decoder_layers": 0}


@pytest.fixture(scope="module")
def race_dir(tmp_path_factory):
    return write_synthetic_race(tmp_path_factory.mktemp("race") / "RACE", n_train=12, n_dev=4, n_test=3, seed=1)


@pytest.fixture(scope="module")
def tokenizer():
    return FunnelTokenizer.train_from_iterator(demo_corpus(), 256, show_progress=False)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("mc_cfg") / "tiny.json"
    path.write_text(json.dumps(TINY_MC_MODEL))
    return path


def _race_file(folder, name, **fields):
    document = {"article": "the capital of avaria is lorn .", "questions": ["what is the capital of avaria ?"],
                "options": [["lorn", "vell", "kesh", "tamsk"]], "answers": ["A"], "id": name, **fields}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(document))


# --------------------------------------------------------------------------------------------- synthetic data
def test_synthetic_race_layout_subsets_and_determinism(race_dir, tmp_path):
    for split, n in (("train", 12), ("dev", 4), ("test", 3)):
        for subset in ("middle", "high"):
            assert len(list((race_dir / split / subset).glob("*.txt"))) == n
    again = write_synthetic_race(tmp_path / "again", n_train=12, n_dev=4, n_test=3, seed=1)
    other = write_synthetic_race(tmp_path / "other", n_train=12, n_dev=4, n_test=3, seed=2)
    name = "train/high/3.txt"
    assert (again / name).read_bytes() == (race_dir / name).read_bytes()
    assert (other / name).read_bytes() != (race_dir / name).read_bytes()
    examples = read_race(race_dir, "train")
    middle = [e for e in examples if e.subset == "middle"]
    high = [e for e in examples if e.subset == "high"]
    assert middle and high and len(examples) == len(middle) + len(high)
    assert np.mean([len(e.context) for e in high]) > 1.5 * np.mean([len(e.context) for e in middle])
    assert all(e.num_choices == 4 and 0 <= e.label < 4 for e in examples)
    for example in examples:  # the right choice is stated in the article; the question names its country
        assert example.choices[example.label] in example.context
    assert any("_" in e.question for e in examples) and any("_" not in e.question for e in examples)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "data.txt").write_text("x")
    with pytest.raises(OutputExistsError):
        write_synthetic_race(tmp_path / "real", n_train=1, n_dev=1, n_test=1)


# ----------------------------------------------------------------------------------------------- RACE reader
@pytest.mark.parametrize("fields, expected", [
    ({"answers": ["E"]}, ["question 1", "'answers'", "'E'"]),
    ({"answers": ["A", "B"]}, ["'questions'", "'options'", "'answers'", "lengths"]),
    ({"article": " "}, ["'article'", "empty"]),
    ({"options": [["lorn"]]}, ["question 1", "'options'"]),
])
def test_race_bad_input_names_file_question_and_field(tmp_path, fields, expected):
    _race_file(tmp_path / "dev" / "middle", "1.txt")
    _race_file(tmp_path / "dev" / "high", "7.txt", **fields)
    with pytest.raises(DataFormatError) as err:
        read_race(tmp_path, "dev")
    message = str(err.value)
    assert "7.txt" in message and all(part in message for part in expected), message
    examples = read_race(tmp_path, "dev", skip_bad_rows=True)
    assert len(examples) == 1 and len(examples.skipped) == 1 and examples.skipped[0].path.endswith("7.txt")


def test_race_not_json_names_line_and_skips(tmp_path):
    _race_file(tmp_path / "dev" / "middle", "1.txt")
    _race_file(tmp_path / "dev" / "high", "2.txt", questions=["a ?", "b ?"], options=[["x", "y"], ["x", "y"]],
               answers=["B", "C"])  # question 2's answer is out of range: that question alone is skipped
    (tmp_path / "dev" / "high" / "3.txt").write_text('{"article": "x",\n "questions": [}')
    with pytest.raises(DataFormatError, match=r"2\.txt.*question 2.*'answers'"):
        read_race(tmp_path, "dev")
    (tmp_path / "dev" / "high" / "2.txt").unlink()
    with pytest.raises(DataFormatError, match=r"3\.txt, line 2: .*invalid JSON"):
        read_race(tmp_path, "dev")
    _race_file(tmp_path / "dev" / "high", "2.txt", questions=["a ?", "b ?"], options=[["x", "y"], ["x", "y"]],
               answers=["B", "C"])
    examples = read_race(tmp_path, "dev", skip_bad_rows=True)
    assert [e.guid for e in examples] == ["middle/1.txt/0", "high/2.txt/0"] and examples[1].label == 1
    assert len(examples.skipped) == 2
    with pytest.raises(MissingFileError, match="no such directory"):
        read_race(tmp_path, "train")


# ---------------------------------------------------------------------------------------------- table reader
def test_table_reader_columns_labels_and_choice_counts(tmp_path):
    csv = tmp_path / "swag.csv"
    csv.write_text("ctx,q,e0,e1,e2,gold\nshe opened the door,then she,left,sang,slept,1\n"
                   "he sat,and,ate,slept,ran,ran\n")
    columns = ChoiceColumns("ctx", ("e0", "e1", "e2"), "q", "gold")
    examples = read_choice_table(csv, columns)
    assert [e.label for e in examples] == [1, 2] and examples[0].choices == ("left", "sang", "slept")
    assert examples[0].question == "then she" and examples[0].guid == "line-2"

    jsonl = tmp_path / "data.jsonl"
    rows = [{"context": "c one", "endings": ["a", "b", "c", "d"], "label": 3},
            {"context": "c two", "endings": ["a", "b", "c"], "label": "b"},
            {"context": "c three", "endings": ["a", "b", "c", "d"], "label": 7}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = ChoiceColumns("context", ("endings",), label_column="label")
    with pytest.raises(DataFormatError, match=r"data\.jsonl, line 2: 3 choices, but line 1 has 4"):
        read_choice_table(jsonl, columns)
    examples = read_choice_table(jsonl, columns, skip_bad_rows=True)
    assert [e.label for e in examples] == [3] and [s.line for s in examples.skipped] == [2, 3]
    assert "'label'" in examples.skipped[1].reason and "0 to 3" in examples.skipped[1].reason
    with pytest.raises(InputError, match="list-valued"):
        read_choice_table(csv, ChoiceColumns("ctx", ("e0",), label_column="gold"))


# -------------------------------------------------------------------------------------------------- encoding
def test_encoding_budget_layout_and_blank(tokenizer):
    long_article = " ".join(["the capital of avaria is lorn ."] * 30)
    long_question = " ".join(["what is the capital of avaria"] * 10) + " ?"
    examples = [ChoiceExample("0", long_article, long_question, ("lorn", "vell", "kesh", "tamsk"), 0),
                ChoiceExample("1", "the capital of avaria is lorn .", "the capital of avaria is _ .",
                              ("lorn", "vell", "kesh", "tamsk"), 1)]
    max_seq, max_qa = 48, 12
    arrays = encode_choices(examples, tokenizer, max_seq, max_qa).arrays
    assert arrays["input_ids"].shape == (2, 4, max_seq) and arrays["labels"].tolist() == [0, 1]
    types, mask = arrays["token_type_ids"], arrays["attention_mask"]
    assert mask[0].sum(-1).tolist() == [max_seq] * 4  # the long article fills what the question leaves
    assert ((types[0] == 1) & (mask[0] == 1)).sum(-1).max() == max_qa + 1  # question+option (+ its <sep>)
    qa_ids = arrays["input_ids"][0, 2][types[0, 2] == 1][:-1]
    qa = tokenizer.decode(qa_ids.tolist())
    assert qa.endswith("avaria? kesh") and not qa.startswith("what")  # the option stays, the question's start goes
    # the cloze blank is filled; the short example has exactly the tokenizer's own pair layout
    assert qa_text("the capital of avaria is _ .", "vell") == "the capital of avaria is vell ."
    reference = tokenizer(["the capital of avaria is lorn ."] * 4,
                          [f"the capital of avaria is {c} ." for c in examples[1].choices],
                          padding="max_length", max_length=max_seq, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(arrays[key][1], reference[key])
    with pytest.raises(InputError, match="same number"):
        encode_choices([examples[0], ChoiceExample("2", "a", "b", ("x", "y"), 0)], tokenizer, max_seq, max_qa)
    assert resolve_lengths("race", None, None) == (512, 128)
    with pytest.raises(InputError, match="max_qa_length"):
        resolve_lengths("table", 16, 14)


# ------------------------------------------------------------------------------------------------------- CLI
def _train_args(out, *extra):
    return ["--out", str(out), "--train-vocab", "200", "--max-seq-length", "32", "--max-qa-length", "12",
            "--learning-rate", "2e-3", "--batch-size", "8", "--no-progress", "--seed", "0", *extra]


@pytest.fixture(scope="module")
def trained_race(race_dir, tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("mc_run") / "run"
    code = main(["train", "multiple-choice", "--data-dir", str(race_dir), "--model", str(tiny_config), "--init",
                 "random", *_train_args(out, "--max-steps", "6", "--eval-steps", "3")])
    assert code == 0
    return out


def test_cli_race_train_evaluate_predict(trained_race, race_dir, tmp_path, capsys):
    summary = json.loads((trained_race / "eval_results.json").read_text())
    assert summary["task"] == "multiple_choice" and summary["steps"] == 6 and summary["num_choices"] == 4
    assert {"acc", "acc_middle", "acc_high"} <= set(summary["final_dev_metrics"])
    settings = json.loads((trained_race / "best" / "task.json").read_text())
    assert settings["max_seq_length"] == 32 and settings["max_qa_length"] == 12 and settings["data_format"] == "race"

    capsys.readouterr()
    assert main(["evaluate", "multiple-choice", "--model", str(trained_race / "best"), "--data-dir", str(race_dir),
                 "--out-file", str(tmp_path / "m.json")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    dev = read_race(race_dir, "dev")
    assert metrics["examples"] == len(dev) == metrics["examples_middle"] + metrics["examples_high"]
    assert metrics["acc"] == pytest.approx(summary["best_acc"])
    assert json.loads((tmp_path / "m.json").read_text()) == metrics

    out = tmp_path / "pred.jsonl"
    assert main(["predict", "multiple-choice", "--model", str(trained_race / "best"), "--data-dir", str(race_dir),
                 "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    test = read_race(race_dir, "test")
    assert [r["id"] for r in rows] == [e.guid for e in test]
    for row in rows:
        assert math.isclose(sum(row["probabilities"]), 1, abs_tol=1e-4) and len(row["probabilities"]) == 4
        assert row["label"] == int(np.argmax(row["probabilities"])) and row["answer"] == "ABCD"[row["label"]]

    capsys.readouterr()  # user errors: one line, exit 2
    assert main(["predict", "multiple-choice", "--model", str(trained_race / "best"), "--data-dir", str(race_dir),
                 "--output", str(tmp_path)]) == 2  # a directory
    assert main(["evaluate", "multiple-choice", "--model", str(trained_race / "best"), "--data-dir",
                 str(tmp_path / "nope")]) == 2
    assert main(["train", "multiple-choice", "--data-format", "table", "--model", str(trained_race / "best"),
                 "--out", str(tmp_path / "t")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("paddlefunnel ") for line in errors), errors
    assert "existing directory" in errors[0] and "does not exist" in errors[1]
    assert "--train-file" in errors[2]


@pytest.mark.filterwarnings("ignore:the corpus only supports")  # a tiny table: fewer tokens than asked for
def test_cli_table_train_and_evaluate_with_saved_columns(tmp_path, tiny_config, capsys):
    rows = [{"ctx": f"the capital of {c} is {v} .", "q": f"what is the capital of {c} ?",
             "opts": [v, "vell", "kesh"] if i % 2 else ["kesh", v, "vell"], "gold": v, "id": f"q{i}"}
            for i, (c, v) in enumerate([("avaria", "lorn"), ("borland", "druma"), ("cressia", "oradin")] * 4)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert main(["train", "multiple-choice", "--data-format", "table", "--train-file", str(data), "--dev-file",
                 str(data), "--context-column", "ctx", "--question-column", "q", "--choice-columns", "opts",
                 "--label-column", "gold", "--id-column", "id", "--model", str(tiny_config), "--init", "random",
                 *_train_args(out, "--max-steps", "2")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "multiple-choice", "--model", str(out / "best"), "--data-file", str(data)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["examples"] == 12 and "acc_middle" not in metrics


# --------------------------------------------------------------------------------------------------- serving
def test_export_and_predictor_match_the_dynamic_graph(trained_race, race_dir, tmp_path, capsys):
    from paddlefunnel.deploy import Predictor, export_model, predict_jsonl
    from paddlefunnel.tasks.multiple_choice import load_choice_model, predict_choice_logits, softmax

    export_dir = tmp_path / "export"
    info = export_model(trained_race / "best", export_dir, quiet=True)
    assert info.input_rank == 3 and info.architecture == "FunnelForMultipleChoice"
    examples = read_race(race_dir, "test")[:5]
    expected = softmax(predict_choice_logits(load_choice_model(trained_race / "best"), examples).astype(np.float64))
    predictor = Predictor(export_dir)
    got = predictor.predict_choices([e.context for e in examples], [e.question for e in examples],
                                    [e.choices for e in examples])
    np.testing.assert_allclose([g["probabilities"] for g in got], expected, atol=1e-5)
    assert [g["label"] for g in got] == expected.argmax(-1).tolist()

    lines = [{"id": "a", "context": examples[0].context, "question": examples[0].question,
              "choices": list(examples[0].choices)},
             {"context": "x"},
             {"context": "the capital of avaria is lorn .", "question": "the capital of avaria is _ .",
              "choices": ["lorn", "vell"]}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = predict_jsonl(predictor, source, tmp_path / "out.jsonl", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert result.written == 2 and [e.line for e in result.errors] == [2]
    assert rows[0]["id"] == "a" and rows[0]["probabilities"] == pytest.approx(got[0]["probabilities"], abs=1e-6)
    assert "choices" in rows[1]["error"] and len(rows[2]["probabilities"]) == 2
    capsys.readouterr()
    assert main(["predict", "--model", str(export_dir), "--input", str(source)]) == 1  # one bad line
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


# ---------------------------------------------------------------------------------------------- learnability
def test_tiny_funnel_learns_synthetic_race(tmp_path, tokenizer):
    """A short version of the learnability run (see the report): on RACE-M-like articles the loss falls well
    below chance, ln 4 = 1.39, within 50 steps."""
    from paddlefunnel.tasks.multiple_choice import MultipleChoiceRun, train_multiple_choice
    from paddlefunnel.training import TrainingArguments

    data = write_synthetic_race(tmp_path / "race", n_train=150, n_dev=1, n_test=1, seed=0)
    tokenizer.save_pretrained(tmp_path / "tok")
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({**TINY_MC_MODEL, "d_model": 64, "n_head": 4, "d_inner": 128, "hidden_dropout": 0.0,
                                  "attention_dropout": 0.0, "activation_dropout": 0.0}))
    train = read_race(data, "train", subsets=("middle",))
    args = TrainingArguments(output_dir=str(tmp_path / "run"), learning_rate=3e-3, per_device_batch_size=16,
                             max_steps=50, warmup_ratio=0.1, logging_steps=5, seed=0, progress=False)
    run = MultipleChoiceRun(train, None, str(config), tokenizer=str(tmp_path / "tok"), max_seq_length=48,
                            max_qa_length=16, init="random")
    train_multiple_choice(run, args)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert losses[0] > 1.2 and np.mean(losses[-2:]) < 0.8, losses
