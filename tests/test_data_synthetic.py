"""Built-in synthetic data: determinism, readability by our readers, balance, correct labels and spans."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from paddlefunnel.data.glue import read_glue
from paddlefunnel.data.squad import load_squad_dataset_for_eval, read_squad
from paddlefunnel.data.synthetic import (
    COUNTRIES,
    RELATIONS,
    SYNTHETIC_GLUE_TASK,
    demo_corpus,
    synthetic_squad,
    world,
    write_synthetic_glue,
    write_synthetic_squad,
)
from paddlefunnel.metrics.squad import squad_evaluate

FILES = ("train.tsv", "dev.tsv", "test.tsv")


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_glue(tmp_path_factory.mktemp("glue"), n_train=3000, n_dev=600, n_test=50, seed=0)


def facts_named(text: str) -> tuple[str, str]:
    """(country, relation) a generated question or sentence talks about, parsed independently of the generator."""
    countries = [c for c in COUNTRIES if c in text.split()]
    relations = [r for r, (phrase, _) in RELATIONS.items() if f" {phrase} " in f" {text} "]
    assert len(countries) == 1 and len(relations) == 1, text
    return countries[0], relations[0]


# ------------------------------------------------------------------------------------------------ GLUE
def test_glue_is_deterministic(tmp_path: Path) -> None:
    first = write_synthetic_glue(tmp_path / "a", 50, 20, 20, seed=3)
    second = write_synthetic_glue(tmp_path / "b", 50, 20, 20, seed=3)
    other = write_synthetic_glue(tmp_path / "c", 50, 20, 20, seed=4)
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "train.tsv").read_bytes() != (other / "train.tsv").read_bytes()
    assert first == tmp_path / "a" / "QNLI" and SYNTHETIC_GLUE_TASK == "QNLI"


def test_glue_reads_back_in_qnli_layout(glue_dir: Path) -> None:
    root = glue_dir.parent
    train, dev, test = (read_glue(root, "QNLI", split) for split in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (3000, 600, 50)
    assert train.label_list == ("entailment", "not_entailment")
    assert [ex.index for ex in test] == list(range(50)) and all(ex.label is None for ex in test)
    assert (glue_dir / "test.tsv").read_text(encoding="utf-8").startswith("index\tquestion\tsentence\n")


def test_glue_labels_are_balanced_and_correct(glue_dir: Path) -> None:
    facts = world()
    for split, n in (("train", 3000), ("dev", 600)):
        examples = read_glue(glue_dir.parent, "QNLI", split)
        assert sum(ex.label == "entailment" for ex in examples) == n // 2
        for ex in examples:
            asked, stated = facts_named(ex.text_a), facts_named(ex.text_b)
            assert (ex.label == "entailment") == (asked == stated)
            assert f" {facts[stated[0]][stated[1]]} " in f" {ex.text_b} "  # the sentence states a true fact


def test_no_single_word_predicts_the_label(glue_dir: Path) -> None:
    examples = read_glue(glue_dir.parent, "QNLI", "train")
    seen, positive = collections.Counter(), collections.Counter()
    for ex in examples:
        for segment, text in (("question", ex.text_a), ("sentence", ex.text_b)):
            for word in set(text.split()):
                seen[segment, word] += 1
                positive[segment, word] += ex.label == "entailment"
    frequent = [key for key, count in seen.items() if count >= 150]
    assert len(frequent) > 30
    rates = {key: positive[key] / seen[key] for key in frequent}
    assert all(0.38 <= rate <= 0.62 for rate in rates.values()), {k: r for k, r in rates.items() if not
                                                                  0.38 <= r <= 0.62}


def test_bag_of_words_cannot_learn_it(glue_dir: Path) -> None:
    # A linear model over which words occur in which segment stays near chance: the task needs a comparison.
    def words(ex):
        return " ".join([f"q_{w}" for w in ex.text_a.split()] + [f"s_{w}" for w in ex.text_b.split()])

    train, dev = (read_glue(glue_dir.parent, "QNLI", split) for split in ("train", "dev"))
    vectorizer = CountVectorizer(token_pattern=r"\S+")
    model = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(map(words, train)),
                                                  [ex.label for ex in train])
    assert model.score(vectorizer.transform(map(words, dev)), [ex.label for ex in dev]) < 0.6


def test_glue_refuses_to_replace_real_data(tmp_path: Path) -> None:
    real = tmp_path / "QNLI"
    real.mkdir()
    (real / "train.tsv").write_text("real data\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not written by write_synthetic_glue"):
        write_synthetic_glue(tmp_path, 10, 10, 10)
    assert (real / "train.tsv").read_text(encoding="utf-8") == "real data\n"
    with pytest.raises(ValueError, match="n_dev=0: expected a positive integer"):
        write_synthetic_glue(tmp_path / "x", 10, 0, 10)


def test_glue_can_be_rewritten_over_itself(tmp_path: Path) -> None:
    write_synthetic_glue(tmp_path, 10, 10, 10, seed=1)
    write_synthetic_glue(tmp_path, 12, 10, 10, seed=1)
    assert len(read_glue(tmp_path, "qnli", "train")) == 12


# ----------------------------------------------------------------------------------------------- SQuAD
def test_squad_is_deterministic(tmp_path: Path) -> None:
    a = write_synthetic_squad(tmp_path / "a.json", 20, seed=5).read_bytes()
    b = write_synthetic_squad(tmp_path / "b.json", 20, seed=5).read_bytes()
    c = write_synthetic_squad(tmp_path / "c.json", 20, seed=6).read_bytes()
    assert a == b and a != c


def test_squad_v2_reads_back_clean_with_answers_at_answer_start(tmp_path: Path) -> None:
    path = write_synthetic_squad(tmp_path / "v2.json", 60, seed=1)
    result = read_squad(path, training=True)
    assert result.version == "2.0" and not result.report  # nothing skipped, no bad span
    facts = world()
    impossible = [ex for ex in result.examples if ex.is_impossible]
    assert 0.15 < len(impossible) / len(result.examples) < 0.5
    for ex in result.examples:
        country, relation = facts_named(ex.question)
        stated = {facts_named(sentence) for sentence in ex.context.removesuffix(" .").split(" . ")}
        assert ((country, relation) in stated) is not ex.is_impossible  # unanswerable iff the fact is not given
        if ex.is_impossible:
            assert ex.answers == []
            continue
        (answer,) = ex.answers
        start = answer["answer_start"]
        assert ex.context[start:start + len(answer["text"])] == answer["text"] == facts[country][relation]
        assert ex.title == country.capitalize()
    ids = [ex.qas_id for ex in result.examples]
    assert len(set(ids)) == len(ids)


def test_squad_plausible_answers_point_into_the_context(tmp_path: Path) -> None:
    document = synthetic_squad(30, seed=2)
    plausible = [(p["context"], a) for art in document["data"] for p in art["paragraphs"] for qa in p["qas"]
                 for a in qa.get("plausible_answers", [])]
    assert plausible
    for context, answer in plausible:
        assert context[answer["answer_start"]:answer["answer_start"] + len(answer["text"])] == answer["text"]


def test_squad_v1_has_no_impossible_questions(tmp_path: Path) -> None:
    path = write_synthetic_squad(tmp_path / "v1.json", 10, seed=1, version_2=False)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["version"] == "1.1"
    assert all("is_impossible" not in qa and qa["answers"] for art in document["data"] for p in art["paragraphs"]
               for qa in p["qas"])
    assert read_squad(path).version == "1.1"


def test_gold_predictions_score_100(tmp_path: Path) -> None:
    path = write_synthetic_squad(tmp_path / "v2.json", 15, seed=4)
    examples = read_squad(path).examples
    predictions = {ex.qas_id: ex.answers[0]["text"] if ex.answers else "" for ex in examples}
    result = squad_evaluate(load_squad_dataset_for_eval(path), predictions)
    assert result["exact"] == result["f1"] == 100.0 and result["NoAns_total"] > 0


# ------------------------------------------------------------------------------------------------ corpus
def test_demo_corpus_covers_every_generated_word(glue_dir: Path, tmp_path: Path) -> None:
    corpus = demo_corpus()
    assert corpus == demo_corpus() and len(corpus) == len(set(corpus))
    vocabulary = {word for sentence in corpus for word in sentence.split()}
    assert len(vocabulary) < 150  # small on purpose
    words = set()
    for split in ("train", "dev", "test"):
        for ex in read_glue(glue_dir.parent, "QNLI", split):
            words |= set(ex.text_a.split()) | set(ex.text_b.split())
    for ex in read_squad(write_synthetic_squad(tmp_path / "s.json", 30, seed=9)).examples:
        words |= set(ex.question.split()) | set(ex.context.split())
    assert words <= vocabulary
