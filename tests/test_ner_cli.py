"""Token classification end to end: `train ner` learns (loss far below a guess), `evaluate ner` / `predict ner`
agree, user errors are one line with exit 2, and an exported tagger serves raw text with character offsets that
match the dynamic-graph model."""

import json
import math
from collections import Counter

import pytest

from paddlefunnel.cli import main
from paddlefunnel.data import read_tagged, write_synthetic_conll
from paddlefunnel.data.synthetic_conll import synthetic_conll_text
from paddlefunnel.deploy import Predictor, export_model, predict_jsonl
from paddlefunnel.data.conll import TaggedSentence
from paddlefunnel.tasks.token_classification import (build_features, load_for_inference, model_logits, split_words,
                                                    tag_texts)

TINY_MODEL = {"model_type": "funnel", "vocab_size": 1000, "block_sizes": [1, 1, 1], "d_model": 64, "n_head": 4,
              "d_head": 16, "d_inner": 128, "num_decoder_layers": 1}
TEXTS = ["Mira Heron visited Port Ives, the capital of Avaria.", "The Bank of Cressia hired Tobin Crane last year.",
         "", "people in Kaldor speak Ulvar .",
         " ".join(["Mira Heron met Tobin Crane in Tamsk ."] * 6)]  # longer than one 32-piece window


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    return write_synthetic_conll(tmp_path_factory.mktemp("ner") / "data", n_train=400, n_dev=40, n_test=20, seed=0)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY_MODEL))
    return path


def train_command(data, config, out, *extra):
    return ["train", "ner", "--train-file", str(data / "train.txt"), "--dev-file", str(data / "dev.txt"),
            "--model", str(config), "--init", "random", "--train-vocab", "200", "--max-seq-length", "32",
            "--doc-stride", "8", "--learning-rate", "2e-3", "--batch-size", "16", "--no-progress", "--seed", "0",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def trained(ner_data, tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("ner_run")
    assert main(train_command(ner_data, tiny_config, out, "--max-steps", "40", "--logging-steps", "10",
                              "--eval-steps", "40")) == 0
    return out


def test_training_loss_falls_far_below_a_guess(trained, ner_data):
    """Below half of the tag distribution's entropy (the best loss without reading the words), itself below the
    uniform guess log(5)."""
    log = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r.get("event") == "train"]
    counts = Counter(tag for s in read_tagged(ner_data / "train.txt") for tag in s.tags)
    total = sum(counts.values())
    prior_entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    assert prior_entropy < math.log(len(counts))
    assert losses[-1] < 0.5 * prior_entropy
    summary = json.loads((trained / "eval_results.json").read_text())
    assert summary["task"] == "token_classification" and summary["scheme"] == "IOB1"
    assert summary["best_f1"] > 50
    settings = json.loads((trained / "best" / "task.json").read_text())
    assert settings == {"task": "token_classification", "label_list": ["O", "I-LOC", "I-MISC", "I-ORG", "I-PER"],
                        "scheme": "IOB1", "max_seq_length": 32, "doc_stride": 8, "label_all_pieces": False}


def test_evaluate_and_predict_agree(trained, ner_data, tmp_path, capsys):
    best = trained / "best"
    metrics_file = tmp_path / "metrics.json"
    capsys.readouterr()
    assert main(["evaluate", "ner", "--model", str(best), "--file", str(ner_data / "dev.txt"),
                 "--out-file", str(metrics_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(metrics_file.read_text())
    assert printed["sentences"] == 40 and set(printed["per_type"]) <= {"LOC", "MISC", "ORG", "PER"}
    conll_out, jsonl_out = tmp_path / "pred.txt", tmp_path / "pred.jsonl"
    assert main(["predict", "ner", "--model", str(best), "--file", str(ner_data / "dev.txt"),
                 "--output", str(conll_out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["f1"] == pytest.approx(printed["f1"])
    blocks = [b.splitlines() for b in conll_out.read_text().strip("\n").split("\n\n")]
    gold = read_tagged(ner_data / "dev.txt")
    assert [[line.split()[0] for line in b] for b in blocks] == [list(s.tokens) for s in gold]
    assert all(len(line.split()) == 3 for b in blocks for line in b)  # token gold predicted
    assert main(["predict", "ner", "--model", str(best), "--file", str(ner_data / "dev.txt"),
                 "--output", str(jsonl_out)]) == 0
    rows = [json.loads(line) for line in jsonl_out.read_text().splitlines()]
    assert [r["tags"] for r in rows] == [[line.split()[2] for line in b] for b in blocks]


def test_user_errors_are_one_line_and_exit_2(trained, ner_data, tiny_config, tmp_path, capsys):
    bad_dev = tmp_path / "dev.txt"
    bad_dev.write_text("Paris NNP I-NP I-LOC\n\nThe DT I-NP O\nFoo NNP I-NP I-GPE\n")
    command = train_command(ner_data, tiny_config, tmp_path / "o")
    command[command.index("--dev-file") + 1] = str(bad_dev)
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dev.txt, line 4" in err and "I-GPE" in err
    assert main(train_command(ner_data, tiny_config, tmp_path / "o", "--label-column", "7")) == 2
    assert "label column 7 does not exist" in capsys.readouterr().err
    assert main(train_command(ner_data, tiny_config, tmp_path / "o", "--scheme", "IOB2")) == 2
    assert "does not fit the training tags, which are IOB1" in capsys.readouterr().err
    assert not (tmp_path / "o" / "best").exists()
    assert main(["predict", "ner", "--model", str(trained / "best"), "--file", str(ner_data / "dev.txt"),
                 "--output", str(tmp_path)]) == 2
    assert "existing directory" in capsys.readouterr().err
    assert main(["evaluate", "ner", "--model", str(tmp_path), "--file", str(ner_data / "dev.txt")]) == 2
    assert "task.json" in capsys.readouterr().err


def test_jsonl_data_and_all_pieces_labels(ner_data, tiny_config, tmp_path, capsys):
    (tmp_path / "iob2.txt").write_text(synthetic_conll_text(40, seed=5, scheme="IOB2"))
    rows = [{"tokens": list(s.tokens), "tags": list(s.tags)} for s in read_tagged(tmp_path / "iob2.txt")]
    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = train_command(ner_data, tiny_config, tmp_path / "run", "--max-steps", "2", "--label-all-pieces",
                            "--scheme", "IOB2")
    command[command.index("--train-file") + 1] = str(tmp_path / "train.jsonl")
    command[command.index("--dev-file") + 1] = str(tmp_path / "dev.jsonl")
    capsys.readouterr()
    assert main(command) == 0
    settings = json.loads((tmp_path / "run" / "best" / "task.json").read_text())
    assert settings["label_all_pieces"] is True and settings["scheme"] == "IOB2"


def test_exported_tagger_serves_raw_text_with_offsets(trained, tmp_path):
    export = tmp_path / "export"
    export_model(trained / "best", export, quiet=True)
    predictor = Predictor(export, device="cpu", batch_size=3)
    served = predictor.predict(TEXTS)
    model, tokenizer, settings = load_for_inference(trained / "best")
    dynamic = tag_texts(TEXTS, tokenizer, settings, model_logits(model))
    assert [[(e["entity"], e["start"], e["end"]) for e in r["entities"]] for r in served] == \
           [[(e["entity"], e["start"], e["end"]) for e in entities] for entities in dynamic]
    for text, result, entities in zip(TEXTS, served, dynamic):
        for entity, reference in zip(result["entities"], entities):
            assert text[entity["start"]:entity["end"]] == entity["text"]
            assert 0 < entity["score"] <= 1 and entity["score"] == pytest.approx(reference["score"], abs=1e-4)
    assert served[2] == {"entities": []}
    features = build_features([TaggedSentence("long", tuple(w for w, _, _ in split_words(tokenizer, TEXTS[4])))],
                              tokenizer, settings)
    assert features.windows_per_sentence == [len(features)] and len(features) > 1
    assert sum(len(r["entities"]) for r in served) > 0
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    result = predict_jsonl(predictor, lines, tmp_path / "out.jsonl", progress=False)
    assert result.written == len(TEXTS) and not result.errors
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["entities"] for r in rows] == [r["entities"] for r in served]
