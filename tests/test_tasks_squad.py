"""SQuAD: windows and labels, n-best post-processing (hand-worked), skips, and train/predict/evaluate via the CLI."""

import json

import numpy as np
import pytest

from paddlefunnel.cli import main
from paddlefunnel.data import SquadExample, write_synthetic_squad
from paddlefunnel.tasks.squad import (
    SquadFeatures,
    SquadSettings,
    build_features,
    postprocess_predictions,
)
from paddlefunnel.tokenizer import FunnelTokenizer

WORDS = ("the river of alba is long and the capital of alba is druma while the flag of alba is blue "
         "what which is in a city country language").split()


@pytest.fixture(scope="module")
def tokenizer():
    corpus = [" ".join(WORDS)] * 5 + [w for w in WORDS for _ in range(3)]
    return FunnelTokenizer.train_from_iterator(corpus, 80, show_progress=False)


def example(qid, question, context, answer=None, impossible=False):
    answers = [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]
    return SquadExample(qid, question, context, answers, impossible)


def test_windows_cover_long_contexts_and_labels_point_at_the_answer(tokenizer):
    filler = " ".join(["the river of alba is long ."] * 6)
    context = f"{filler} the capital of alba is druma . {filler}"
    ex = example("q1", "what is the capital of alba ?", context, "druma")
    settings = SquadSettings(max_seq_length=32, doc_stride=8, max_query_length=10)
    feats = build_features([ex], tokenizer, settings, training=True)
    assert len(feats) > 3 and set(feats.example_index) == {0}
    assert feats.arrays["input_ids"].shape == (len(feats), 32)
    hits = 0
    for w in range(len(feats)):
        s, e = feats.arrays["start_positions"][w], feats.arrays["end_positions"][w]
        offsets = feats.offsets[w]
        if s == 0:
            assert e == 0
            continue
        hits += 1
        assert context[offsets[s][0]: offsets[e][1]] == "druma"
        assert feats.arrays["token_type_ids"][w][s] == 1
    assert hits >= 1
    # Consecutive windows overlap by doc_stride context tokens.
    first = [o for o in feats.offsets[0] if o]
    second = [o for o in feats.offsets[1] if o]
    assert first[-8:] == second[:8]


def test_unanswerable_and_cut_questions(tokenizer):
    long_question = " ".join(["what"] * 30) + " is the flag of alba ?"
    exs = [example("q1", "which is the language of alba ?", "the flag of alba is blue .", impossible=True),
           example("q2", long_question, "the flag of alba is blue .", "blue")]
    settings = SquadSettings(max_seq_length=40, doc_stride=4, max_query_length=8)
    feats = build_features(exs, tokenizer, settings, training=True)
    assert feats.arrays["start_positions"][0] == feats.arrays["end_positions"][0] == 0
    types, real = feats.arrays["token_type_ids"][1], feats.arrays["attention_mask"][1] == 1
    assert ((types == 0) & real).sum() == 8 + 1  # 8 question tokens + <sep>; <cls> has type 2
    w = 1
    s, e = feats.arrays["start_positions"][w], feats.arrays["end_positions"][w]
    assert exs[1].context[feats.offsets[w][s][0]: feats.offsets[w][e][1]] == "blue"


def test_questions_without_tokens_are_skipped_and_reported(tokenizer):
    exs = [example("empty", "\u200b\u200b", "the flag of alba is blue ."),
           example("ok", "what is the flag of alba ?", "the flag of alba is blue .", "blue")]
    feats = build_features(exs, tokenizer, SquadSettings(max_seq_length=32, doc_stride=4, max_query_length=8))
    assert feats.skipped == [("empty", "question has no tokens after tokenisation")]
    assert list(feats.example_index) == [1]
    with pytest.raises(ValueError, match="no usable SQuAD questions: empty"):
        build_features(exs[:1], tokenizer, SquadSettings(max_seq_length=32, doc_stride=4, max_query_length=8))


def _hand_features(offsets_per_window, example_of_window):
    n = len(offsets_per_window)
    return SquadFeatures({"input_ids": np.zeros((n, 6), np.int64)}, np.array(example_of_window), offsets_per_window)


CONTEXT = "alba is blue and red"
#          0123456789012345678
# tokens:  <cls> q <sep> alba(0,4) is(5,7) blue(8,12) ...


def test_postprocess_picks_best_valid_span_across_windows():
    ex = SquadExample("q", "what colour ?", CONTEXT, [])
    w0 = [None, None, None, (0, 4), (5, 7), (8, 12)]
    w1 = [None, None, None, (8, 12), (13, 16), (17, 20)]
    feats = _hand_features([w0, w1], [0, 0])
    start = np.array([[0, 9, 9, 0, 0, 3.0], [0, 0, 0, 1.0, 0, 2.5]])
    end = np.array([[0, 9, 9, 0, 0, 3.0], [0, 0, 0, 0, 0, 2.0]])
    # Window 0: question tokens (index 1-2) score high but are not context; best valid is blue-blue = 6.0.
    # Window 1: red-red = 4.5, blue..red = 1 + 2 = 3.0 (end before start is never taken).
    preds, nbest, odds = postprocess_predictions([ex], feats, start, end, SquadSettings(max_seq_length=64,
                                                 doc_stride=8, max_query_length=8, n_best_size=3))
    assert preds == {"q": "blue"} and odds == {}
    texts = [n["text"] for n in nbest["q"]]
    assert texts[0] == "blue" and texts[1] == "red" and len(texts) == len(set(texts))
    assert sum(n["probability"] for n in nbest["q"]) == pytest.approx(1.0)
    # max_answer_length=1 forbids "blue and red"-style spans; a long best span gets rejected.
    start2 = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 5.0, 0, 0]])
    end2 = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 5.0]])
    settings = SquadSettings(max_seq_length=64, doc_stride=8, max_query_length=8, max_answer_length=1)
    assert postprocess_predictions([ex], feats, start2, end2, settings)[0]["q"] != CONTEXT[8:20]
    settings3 = SquadSettings(max_seq_length=64, doc_stride=8, max_query_length=8, max_answer_length=3)
    assert postprocess_predictions([ex], feats, start2, end2, settings3)[0]["q"] == "blue and red"


def test_postprocess_v2_null_score_and_threshold():
    ex = SquadExample("q", "what ?", CONTEXT, [], True)
    feats = _hand_features([[None, None, None, (0, 4), (5, 7), (8, 12)]], [0])
    start = np.array([[2.0, 0, 0, 1.5, 0, 0]])
    end = np.array([[1.0, 0, 0, 1.0, 0, 0]])
    # null = 2 + 1 = 3.0; best span "alba" = 1.5 + 1.0 = 2.5; diff = 0.5.
    v2 = dict(max_seq_length=64, doc_stride=8, max_query_length=8, version_2_with_negative=True)
    preds, nbest, odds = postprocess_predictions([ex], feats, start, end, SquadSettings(**v2))
    assert preds == {"q": ""} and odds["q"] == pytest.approx(0.5)
    assert nbest["q"][0]["text"] == "" and nbest["q"][1]["text"] == "alba"
    preds, _, _ = postprocess_predictions([ex], feats, start, end, SquadSettings(**v2, null_score_diff_threshold=0.5))
    assert preds == {"q": "alba"}  # a difference equal to the threshold keeps the span


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    write_synthetic_squad(root / "train.json", 200, seed=0)
    write_synthetic_squad(root / "dev.json", 20, seed=1)
    (root / "tiny.json").write_text(json.dumps({"model_type": "funnel", "block_sizes": [1, 1, 1], "d_model": 64,
                                                "n_head": 4, "d_head": 16, "d_inner": 128, "num_decoder_layers": 1}))
    return root


def test_train_predict_evaluate_squad_cli(synthetic, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "squad", "--train-file", str(synthetic / "train.json"), "--dev-file",
                 str(synthetic / "dev.json"), "--version-2-with-negative", "--model", str(synthetic / "tiny.json"),
                 "--init", "random", "--train-vocab", "300", "--max-seq-length", "64", "--doc-stride", "16",
                 "--max-query-length", "16",
                 "--out", str(out), "--epochs", "3", "--batch-size", "32", "--learning-rate", "3e-3",
                 "--logging-steps", "5", "--no-progress"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])  # span loss starts near ln(64) ~ 4.2
    evals = [r for r in log if r["event"] == "eval"]
    assert len(evals) == 3 and all("HasAns_f1" in r and "best_f1" in r for r in evals)
    assert (out / "best" / "squad_settings.json").is_file()

    capsys.readouterr()
    assert main(["predict", "squad", "--data-file", str(synthetic / "dev.json"), "--model", str(out / "best"),
                 "--out", str(tmp_path / "pred")]) == 0
    result = json.loads(capsys.readouterr().out)
    predictions = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    null_odds = json.loads((tmp_path / "pred" / "null_odds.json").read_text())
    nbest = json.loads((tmp_path / "pred" / "nbest_predictions.json").read_text())
    assert set(predictions) == set(null_odds) == set(nbest) and len(predictions) == result["questions"]
    # predict reloads best/ (the best dev evaluation) and must reproduce that evaluation's score.
    assert result["metrics"]["f1"] == pytest.approx(max(r["f1"] for r in evals))

    assert main(["evaluate", "squad", "--data-file", str(synthetic / "dev.json"), "--pred-file",
                 str(tmp_path / "pred" / "predictions.json"), "--na-prob-file",
                 str(tmp_path / "pred" / "null_odds.json")]) == 0
    official = json.loads(capsys.readouterr().out)
    assert official["f1"] == pytest.approx(result["metrics"]["f1"])
    assert official["best_f1"] == pytest.approx(result["metrics"]["best_f1"])


def test_bad_settings_and_files(tmp_path, capsys):
    with pytest.raises(ValueError, match="max_query_length=64 leaves no room"):
        SquadSettings(max_seq_length=64, max_query_length=64)
    with pytest.raises(ValueError, match="doc_stride=320"):
        SquadSettings(max_seq_length=384, doc_stride=320)  # 384 - 64 - 3 = 317 context tokens per window
    (tmp_path / "bad.json").write_text('{"data": [')
    assert main(["train", "squad", "--train-file", str(tmp_path / "bad.json"), "--model", "small",
                 "--init", "random", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "bad.json" in capsys.readouterr().err
