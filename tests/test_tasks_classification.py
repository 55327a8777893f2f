"""GLUE and user-data classification: learnability, CLI train/evaluate, predictions, bad input."""

import json

import numpy as np
import pytest

from paddlefunnel.cli import main
from paddlefunnel.data import write_synthetic_glue

TINY_MODEL = {"model_type": "funnel", "vocab_size": 1000, "block_sizes": [1, 1, 1], "d_model": 64, "n_head": 4,
              "d_head": 16, "d_inner": 128, "num_decoder_layers": 1}


@pytest.fixture(scope="module")
def synthetic_glue(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    write_synthetic_glue(root, n_train=2400, n_dev=200, n_test=50, seed=0)
    return root


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY_MODEL))
    return path


def train_args(out, *extra):
    return ["--out", str(out), "--train-vocab", "300", "--max-seq-length", "32", "--learning-rate", "2e-3",
            "--batch-size", "32", "--no-progress", "--seed", "0", *extra]


def test_glue_train_learns_then_evaluate_and_predict(synthetic_glue, tiny_config, tmp_path, capsys):
    """A shorter version of the README's learnability run: the loss must fall well below chance (ln 2)."""
    out = tmp_path / "run"
    assert main(["train", "glue", "--task", "qnli", "--data-dir", str(synthetic_glue), "--model", str(tiny_config),
                 "--init", "random", *train_args(out, "--epochs", "5", "--logging-steps", "5")]) == 0
    summary = json.loads((out / "eval_results.json").read_text())
    assert summary["task"] == "QNLI" and summary["steps"] == 5 * 75
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert np.mean(losses[:4]) > 0.6 and np.mean(losses[-6:]) < 0.55  # chance: ln 2 = 0.69
    assert summary["best_acc"] >= 0.7  # 2 classes, balanced: chance is 0.5
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "task.json"):
        assert (out / "best" / name).is_file(), name

    capsys.readouterr()
    assert main(["evaluate", "glue", "--task", "qnli", "--data-dir", str(synthetic_glue), "--model",
                 str(out / "best"), "--out-file", str(tmp_path / "m.json")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["acc"] == pytest.approx(summary["best_acc"]) and metrics["examples"] == 200
    assert json.loads((tmp_path / "m.json").read_text()) == metrics

    from paddlefunnel.tasks.classification import predict_glue

    written = predict_glue("qnli", str(synthetic_glue), str(out / "best"), str(tmp_path / "submit"))
    assert [p.name for p in written] == ["QNLI.tsv"]
    lines = written[0].read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 51
    assert {line.split("\t")[1] for line in lines[1:]} <= {"entailment", "not_entailment"}


def test_resume_flag_continues_a_run(synthetic_glue, tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "glue", "--task", "qnli", "--data-dir", str(synthetic_glue), "--model", str(tiny_config),
            "--init", "random"]
    assert main([*args, *train_args(out, "--max-steps", "4", "--save-steps", "2")]) == 0
    capsys.readouterr()
    assert main([*args, *train_args(out, "--max-steps", "4", "--resume")]) == 0
    assert "resumed from" in capsys.readouterr().err


def _write_rows(path, rows, fmt):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        sep = "," if fmt == "csv" else "\t"
        keys = list(rows[0])
        path.write_text(sep.join(keys) + "\n" + "".join(sep.join(str(r[k]) for k in keys) + "\n" for r in rows))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_classify_user_data(tmp_path, tiny_config, fmt):
    rng = np.random.default_rng(0)
    words = ["good", "great", "fine", "bad", "awful", "poor", "movie", "plot", "actor", "the", "a", "was"]
    rows = []
    for _ in range(160):
        positive = bool(rng.integers(0, 2))
        mood = rng.choice(words[:3] if positive else words[3:6])
        filler = " ".join(rng.choice(words[6:], 4))
        rows.append({"review": f"{filler} {mood}", "label": "pos" if positive else "neg"})
    _write_rows(tmp_path / f"train.{fmt}", rows[:120], fmt)
    _write_rows(tmp_path / f"dev.{fmt}", rows[120:], fmt)
    out = tmp_path / "run"
    assert main(["train", "classify", "--train-file", str(tmp_path / f"train.{fmt}"), "--dev-file",
                 str(tmp_path / f"dev.{fmt}"), "--text-columns", "review", "--label-column", "label",
                 "--model", str(tiny_config), "--init", "random", *train_args(out, "--epochs", "6")]) == 0
    summary = json.loads((out / "eval_results.json").read_text())
    assert summary["best_acc"] >= 0.9
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def test_classify_regression(tmp_path, tiny_config):
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(120):
        n = int(rng.integers(0, 5))
        rows.append({"a": " ".join(["star"] * n + ["meh"] * (4 - n)), "b": "rating", "score": float(n)})
    _write_rows(tmp_path / "train.csv", rows[:90], "csv")
    _write_rows(tmp_path / "dev.csv", rows[90:], "csv")
    out = tmp_path / "run"
    assert main(["train", "classify", "--train-file", str(tmp_path / "train.csv"), "--dev-file",
                 str(tmp_path / "dev.csv"), "--text-columns", "a,b", "--label-column", "score", "--regression",
                 "--model", str(tiny_config), "--init", "random", *train_args(out, "--epochs", "8")]) == 0
    summary = json.loads((out / "eval_results.json").read_text())
    assert summary["best_pearson"] > 0.8
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "LABEL_0"}


def test_bad_input_errors(tmp_path, tiny_config, synthetic_glue, capsys):
    assert main(["train", "glue", "--task", "qnli", "--data-dir", str(tmp_path / "nope"), "--model",
                 str(tiny_config), "--init", "random", *train_args(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["train", "glue", "--task", "qnli", "--data-dir", str(synthetic_glue), "--model", "not-a-model",
                 *train_args(tmp_path / "o")]) == 2
    assert "expected a model directory" in capsys.readouterr().err
    assert main(["train", "glue", "--task", "qnli", "--data-dir", str(synthetic_glue), "--model", str(tiny_config),
                 "--init", "random", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "--train-vocab" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,pos\nworse,maybe\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\nok,pos\nodd,neutral\n")
    assert main(["train", "classify", "--train-file", str(bad), "--dev-file", str(dev), "--text-columns", "text",
                 "--label-column", "label", "--model", str(tiny_config), "--init", "random",
                 *train_args(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "dev.csv" in err and "neutral" in err
    assert main(["train", "glue", "--task", "qnli", "--data-dir", str(synthetic_glue), "--model", str(tiny_config),
                 "--init", "random", *train_args(tmp_path / "o", "--recipe", "glue", "--recipe-section", "nope")]) == 2
    assert "no section 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "best").exists()


def test_builtin_recipes_parse():
    from paddlefunnel.training import TrainingArguments, recipe_path

    for name in ("glue", "squad"):
        data = json.loads(recipe_path(name).read_text())
        for section in (k for k in data if not k.startswith("_")):
            TrainingArguments.from_recipe(recipe_path(name), section)
    args = TrainingArguments.from_recipe(recipe_path("glue"), "qnli-xlarge")
    assert (args.learning_rate, args.per_device_batch_size, args.num_epochs) == (1e-5, 24, 4)


def _official_layout(root, task_splits):
    from test_data_glue import FILES, write

    for key in task_splits:
        directory, name, text, _ = FILES[key]
        write(root, directory, name, text)


def test_mnli_submission_has_matched_mismatched_and_ax(tmp_path, tiny_config):
    from paddlefunnel.tasks.classification import predict_glue, train_glue
    from paddlefunnel.training import TrainingArguments

    _official_layout(tmp_path / "glue", [("MNLI", s) for s in ("train", "dev_matched", "dev_mismatched",
                                                               "test_matched", "test_mismatched")] + [("AX", "test")])
    args = TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2, per_device_batch_size=2, progress=False)
    summary = train_glue("mnli", str(tmp_path / "glue"), args, str(tiny_config), train_vocab=60, max_seq_length=16,
                         init="random")
    assert summary["task"] == "MNLI" and summary["dev_examples"] == 1
    written = predict_glue("mnli", str(tmp_path / "glue"), str(tmp_path / "run" / "best"), str(tmp_path / "sub"))
    assert [p.name for p in written] == ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"]
    rows = [p.read_text().splitlines()[1].split("\t") for p in written]
    assert [r[0] for r in rows] == ["5", "6", "0"]
    assert all(r[1] in ("contradiction", "entailment", "neutral") for r in rows)


def test_stsb_regression_predictions_are_scores(tmp_path, tiny_config):
    from test_data_glue import FILES

    from paddlefunnel.tasks.classification import evaluate_glue, predict_glue, train_glue
    from paddlefunnel.training import TrainingArguments

    _official_layout(tmp_path / "glue", [("STS-B", "test")])
    # Correlations need at least two pairs: the official dev row plus a second one in the same layout.
    two_rows = FILES[("STS-B", "dev")][2] + ("1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is "
                                             "playing a flute.\tA man is cutting a tomato.\t0.500\n")
    for split in ("train", "dev"):
        (tmp_path / "glue" / "STS-B" / f"{split}.tsv").write_text(two_rows)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2, per_device_batch_size=1, progress=False)
    train_glue("sts-b", str(tmp_path / "glue"), args, str(tiny_config), train_vocab=60, max_seq_length=16,
               init="random")
    metrics = evaluate_glue("sts-b", str(tmp_path / "glue"), str(tmp_path / "run" / "best"))
    assert {"pearson", "spearmanr", "corr"} <= set(metrics)
    written = predict_glue("sts-b", str(tmp_path / "glue"), str(tmp_path / "run" / "best"), str(tmp_path / "sub"))
    index, score = written[0].read_text().splitlines()[1].split("\t")
    assert written[0].name == "STS-B.tsv" and index == "0" and np.isfinite(float(score))


def test_seed_makes_the_random_initialisation_repeatable(tiny_config):
    from paddlefunnel import FunnelForSequenceClassification, FunnelTokenizer
    from paddlefunnel.data import demo_corpus
    from paddlefunnel.tasks.common import build_model

    tokenizer = FunnelTokenizer.train_from_iterator(demo_corpus(), 200, show_progress=False)

    def weights(seed):
        model = build_model(FunnelForSequenceClassification, str(tiny_config), tokenizer, seed=seed, init="random",
                            num_labels=2)
        return {k: v.numpy() for k, v in model.state_dict().items()}

    first, again, other = weights(3), weights(3), weights(4)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["classifier.linear_out.weight"], other["classifier.linear_out.weight"])
