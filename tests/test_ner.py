"""Token classification without training: CoNLL / JSONL readers, schemes and seqeval metrics, word-piece labels,
windows over long sentences, synthetic CoNLL data, raw-text word offsets."""

import json

import numpy as np
import pytest

from paddlefunnel.data import read_tagged, write_synthetic_conll
from paddlefunnel.data.conll import TaggedSentence, tag_label_list
from paddlefunnel.data.synthetic_conll import LAST_NAMES, synthetic_conll_text
from paddlefunnel.errors import DataFormatError, InputError, OutputExistsError
from paddlefunnel.metrics.ner import check_scheme, detect_scheme, entity_spans, ner_metrics
from paddlefunnel.tasks.token_classification import (
    IGNORE_LABEL,
    NerSettings,
    build_features,
    split_words,
    word_piece_ids,
    word_predictions,
)
from paddlefunnel.tokenizer import FunnelTokenizer

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Brussels NNP B-NP I-LOC
"""

SPECIALS = ["<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "<s>", "</s>"]
WORDS = ["the", "bank", "of", "mira", "heron", "visited", "port", "ives", ".", "##s", "##ia", "ava", "##ria",
         "a", "b", "c"]


@pytest.fixture(scope="module")
def tokenizer():
    return FunnelTokenizer({token: i for i, token in enumerate(SPECIALS + WORDS)})


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- readers
def test_conll_reader_skips_docstart_and_picks_the_tag_column(tmp_path):
    path = write(tmp_path / "train.txt", CONLL)
    data = read_tagged(path)
    assert [s.tokens for s in data] == [("EU", "rejects", "German", "call", "."), ("Peter", "Blackburn"),
                                        ("Brussels",)]
    assert data[0].tags == ("I-ORG", "O", "I-MISC", "O", "O") and data[0].line == 3
    assert data.label_list == ("O", "I-LOC", "I-MISC", "I-ORG", "I-PER")
    chunks = read_tagged(path, label_column=2)
    assert chunks[0].tags == ("B-NP", "B-VP", "B-NP", "I-NP", "O")
    assert chunks.label_list[0] == "O"
    with pytest.raises(DataFormatError, match="train.txt, line 3: label column 4 does not exist"):
        read_tagged(path, label_column=4)


def test_jsonl_reader_and_unlabelled_input(tmp_path):
    path = write(tmp_path / "data.jsonl", json.dumps({"id": "s1", "tokens": ["Mira", "left"],
                                                      "tags": ["B-PER", "O"]}) + "\n\n"
                 + json.dumps({"tokens": ["Avaria"], "tags": ["B-LOC"]}) + "\n")
    data = read_tagged(path)
    assert [(s.guid, s.tokens, s.tags) for s in data] == [("s1", ("Mira", "left"), ("B-PER", "O")),
                                                          ("line-3", ("Avaria",), ("B-LOC",))]
    assert data.label_list == ("O", "B-LOC", "B-PER")
    plain = write(tmp_path / "plain.jsonl", json.dumps({"tokens": ["Mira"]}) + "\n")
    assert read_tagged(plain, labelled=False)[0].tags is None
    with pytest.raises(DataFormatError, match=r"plain.jsonl, line 1: no field 'tags'"):
        read_tagged(plain)
    tokens_only = write(tmp_path / "tokens.txt", "Mira\nleft\n\nAvaria\n")
    assert [s.tokens for s in read_tagged(tokens_only, labelled=False)] == [("Mira", "left"), ("Avaria",)]
    with pytest.raises(DataFormatError, match="tokens.txt, line 1: a single column"):
        read_tagged(tokens_only)


@pytest.mark.parametrize("name, text, label_list, expected", [
    ("cols.txt", "EU NNP I-ORG\nrejects VBZ O\n\nPeter I-PER\n", None, r"cols.txt, line 4: 2 columns.*has 3"),
    ("dev.txt", "EU NNP I-ORG\n\nParis NNP I-LOC\n", ("O", "I-ORG"),
     r"dev.txt, line 3: tag 'I-LOC' in column 2 is not one of the training tags"),
    ("empty.jsonl", '{"tokens": [], "tags": []}\n', None, r"empty.jsonl, line 1: field 'tokens' is empty"),
    ("short.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n', None,
     r"short.jsonl, line 2: field 'tags' has 1 entries but 'tokens' has 2"),
    ("unknown.jsonl", '{"tokens": ["a", "b"], "tags": ["O", "B-X"]}\n', ("O",),
     r"unknown.jsonl, line 1: field 'tags'\[1\] = 'B-X' is not one of the training tags"),
    ("types.jsonl", '{"tokens": "a b", "tags": ["O"]}\n', None, r"types.jsonl, line 1: field 'tokens' must be a list"),
])
def test_bad_input_names_file_line_and_field(tmp_path, name, text, label_list, expected):
    with pytest.raises(DataFormatError, match=expected):
        read_tagged(write(tmp_path / name, text), label_list=label_list)


def test_skip_bad_rows_counts_and_reports(tmp_path, caplog):
    text = "a X O\nb X O\n\nc O\n\nd X B-LOC\n\ne X O\nf X Y Z\n"
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataFormatError, match="line 4"):
        read_tagged(path)
    data = read_tagged(path, skip_bad_rows=True)
    assert [s.tokens for s in data] == [("a", "b"), ("d",)]
    assert [(row.line, "columns" in row.reason) for row in data.skipped] == [(4, True), (9, True)]
    assert "skipped 2 of 4 rows" in caplog.text
    with pytest.raises(DataFormatError, match="all 1 rows were malformed"):
        read_tagged(write(tmp_path / "all_bad.jsonl", '{"tokens": []}\n'), skip_bad_rows=True)


# ---------------------------------------------------------------------------------------- schemes, metrics
def test_scheme_detection():
    assert detect_scheme([["I-PER", "I-PER", "O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["I-PER", "B-PER", "O"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"]]) == "IOB2"
    assert detect_scheme([["O", "O"]]) == "IOB2"
    assert detect_scheme([["B-PER", "E-PER", "S-LOC"]]) == "IOBES"
    with pytest.raises(InputError, match="'PER' is not O or PREFIX-TYPE"):
        detect_scheme([["PER"]])
    assert check_scheme("iob1", [["B-PER", "I-PER"]]) == "IOB1"  # IOB2 tags read as IOB1 too
    with pytest.raises(InputError, match="IOB2 does not fit the training tags, which are IOB1"):
        check_scheme("IOB2", [["O", "I-PER"]])
    with pytest.raises(InputError, match="tagging scheme 'BILOU' is unknown"):
        check_scheme("BILOU", [["O"]])


GOLD_IOB2 = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O"], ["O", "B-LOC"]]
PRED_IOB2 = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["I-ORG", "I-ORG", "I-ORG", "O"], ["O", "B-LOC"]]


@pytest.mark.parametrize("scheme, gold, pred", [
    ("IOB2", GOLD_IOB2, PRED_IOB2),
    ("IOB1", [["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["I-ORG", "O"]],
             [["I-PER", "I-PER", "I-PER", "O", "I-LOC"], ["I-ORG", "I-LOC"]]),
    ("IOBES", [["B-PER", "E-PER", "O", "S-LOC"], ["S-ORG", "O"]], [["B-PER", "E-PER", "O", "S-ORG"], ["S-ORG", "O"]]),
])
def test_metrics_agree_with_seqeval(scheme, gold, pred):
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2, IOBES

    options = {"IOB1": {}, "IOB2": {"mode": "strict", "scheme": IOB2}, "IOBES": {"mode": "strict", "scheme": IOBES}}
    expected = options[scheme]
    metrics = ner_metrics(gold, pred)
    assert metrics["scheme"] == scheme
    assert metrics["f1"] == pytest.approx(100 * f1_score(gold, pred, **expected))
    assert metrics["precision"] == pytest.approx(100 * precision_score(gold, pred, **expected))
    assert metrics["recall"] == pytest.approx(100 * recall_score(gold, pred, **expected))
    assert metrics["accuracy"] == pytest.approx(100 * accuracy_score(gold, pred))
    report = classification_report(gold, pred, output_dict=True, zero_division=0, **expected)
    assert set(metrics["per_type"]) == {k for k in report if not k.endswith(" avg")}
    for kind, scores in metrics["per_type"].items():
        assert scores["f1"] == pytest.approx(100 * report[kind]["f1-score"])
        assert scores["support"] == report[kind]["support"]


def test_iob2_is_scored_strictly():
    """An I- tag after O opens no entity in IOB2's strict mode (conlleval's lenient reading would count it)."""
    strict = ner_metrics(GOLD_IOB2, PRED_IOB2, "IOB2")
    lenient = ner_metrics(GOLD_IOB2, PRED_IOB2, "IOB1")
    assert strict["per_type"]["ORG"]["recall"] == 0.0 and lenient["per_type"]["ORG"]["recall"] == 100.0
    assert entity_spans(["O", "I-PER", "I-PER", "O", "B-LOC"]) == [("PER", 1, 2), ("LOC", 4, 4)]


# ------------------------------------------------------------------------------------ word pieces, windows
def test_first_piece_carries_the_label(tokenizer):
    sentence = TaggedSentence("s", ("Bank", "of", "Avaria", "Mira"), ("B-ORG", "I-ORG", "I-ORG", "B-PER"))
    labels = ("O", "B-ORG", "B-PER", "I-ORG", "I-PER")
    assert word_piece_ids(tokenizer, [sentence.tokens])[0] == [[8], [9], [18, 19], [10]]  # avaria -> ava ##ria
    first = build_features([sentence], tokenizer, NerSettings(labels, "IOB2", 16, 4), with_labels=True)
    row = first.arrays["labels"][0]
    assert first.arrays["input_ids"][0][:7].tolist() == [2, 8, 9, 18, 19, 10, 3]
    assert row[:7].tolist() == [IGNORE_LABEL, 1, 3, 3, IGNORE_LABEL, 2, IGNORE_LABEL]
    assert (row[7:] == IGNORE_LABEL).all() and first.arrays["attention_mask"][0].sum() == 7
    every = build_features([sentence], tokenizer, NerSettings(labels, "IOB2", 16, 4, label_all_pieces=True),
                           with_labels=True)
    assert every.arrays["labels"][0][:7].tolist() == [IGNORE_LABEL, 1, 3, 3, 3, 2, IGNORE_LABEL]
    begins = TaggedSentence("s", ("Avaria",), ("B-LOC",))  # a one-word entity: its continuation piece is I-LOC
    loc = build_features([begins], tokenizer, NerSettings(("O", "B-LOC", "I-LOC"), "IOB2", 8, 2,
                                                          label_all_pieces=True), with_labels=True)
    assert loc.arrays["labels"][0][:4].tolist() == [IGNORE_LABEL, 1, 2, IGNORE_LABEL]


def test_long_sentence_windows_predict_every_word_once(tokenizer):
    words = tuple(["the", "avaria", "bank", "of"] * 12)  # 48 words, 60 pieces (avaria is two)
    tags = tuple(["O", "B-LOC", "B-ORG", "I-ORG"] * 12)
    labels = ("O", "B-LOC", "B-ORG", "I-ORG")
    settings = NerSettings(labels, "IOB2", max_seq_length=12, doc_stride=4)
    short = TaggedSentence("short", ("mira",), ("O",))
    features = build_features([TaggedSentence("long", words, tags), short], tokenizer, settings, with_labels=True)
    pieces = word_piece_ids(tokenizer, [words])[0]
    assert features.windows_per_sentence[0] > 1 and features.windows_per_sentence[1] == 1
    assert features.arrays["input_ids"].shape[1] == 12
    first_pieces = np.cumsum([0] + [len(p) for p in pieces[:-1]])
    for w, (window, place) in enumerate(features.word_positions[0]):
        assert features.window_sentence[window] == 0
        assert features.arrays["input_ids"][window, place] == pieces[w][0]  # the word's first piece
        assert 1 <= place <= 10
    # every piece is inside some window, and words are read away from a window's edges when they can be
    middle = [p for w, (window, p) in enumerate(features.word_positions[0]) if 3 <= first_pieces[w] < 56]
    assert min(min(p - 1, 10 - p) for p in middle) >= 2  # 4 pieces of overlap: never 0 or 1 from an edge
    # one-hot logits from the training labels: the decoded tags are the gold tags, each word exactly once
    logits = np.full(features.arrays["labels"].shape + (len(labels),), -5.0, dtype=np.float32)
    window, place = np.nonzero(features.arrays["labels"] != IGNORE_LABEL)
    logits[window, place, features.arrays["labels"][window, place]] = 5.0
    predicted, probabilities = word_predictions(features, logits, labels)
    assert predicted == [list(tags), ["O"]]
    assert len(probabilities[0]) == len(words) and min(probabilities[0]) > 0.99


def test_bad_window_settings():
    with pytest.raises(InputError, match="doc_stride=10"):
        NerSettings(("O",), max_seq_length=12, doc_stride=10)
    with pytest.raises(InputError, match="max_seq_length=2"):
        NerSettings(("O",), max_seq_length=2, doc_stride=0)
    assert NerSettings(("O",), max_seq_length=34).doc_stride == 8  # a quarter of the 32 pieces of a window


def test_split_words_gives_character_offsets(tokenizer):
    text = "Mira  Heron visited Port-Ives, in Avaria."
    words = split_words(tokenizer, text)
    assert [w for w, _, _ in words] == ["Mira", "Heron", "visited", "Port", "-", "Ives", ",", "in", "Avaria", "."]
    assert all(text[start:end] == word for word, start, end in words)


# ------------------------------------------------------------------------------------------ synthetic data
def test_synthetic_conll_is_deterministic_iob1_and_needs_context(tmp_path):
    first = write_synthetic_conll(tmp_path / "a", n_train=300, n_dev=20, n_test=20, seed=3)
    second = write_synthetic_conll(tmp_path / "b", n_train=300, n_dev=20, n_test=20, seed=3)
    for split in ("train", "dev", "test"):
        assert (first / f"{split}.txt").read_bytes() == (second / f"{split}.txt").read_bytes()
    assert (first / "train.txt").read_text() != synthetic_conll_text(300, seed=4)
    train = read_tagged(first / "train.txt")
    assert all(len(line.split()) == 4 for line in (first / "train.txt").read_text().splitlines() if line)
    assert detect_scheme([s.tags for s in train]) == "IOB1"
    assert set(train.label_list) == {"O", "I-LOC", "I-MISC", "I-ORG", "I-PER"}
    types: dict[str, set] = {}
    for sentence in train:
        for token, tag in zip(sentence.tokens, sentence.tags):
            types.setdefault(token.lower(), set()).add(tag)
    assert any({"I-PER", "O", "I-ORG"} <= types.get(name, set()) for name in LAST_NAMES)  # person, animal, company
    assert {"I-LOC", "I-ORG"} <= types["avaria"]  # the country, and the Bank of Avaria / Avaria Times
    iob2 = write_synthetic_conll(tmp_path / "c", n_train=50, n_dev=5, n_test=5, scheme="IOB2")
    assert detect_scheme([s.tags for s in read_tagged(iob2 / "train.txt")]) == "IOB2"
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "train.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        write_synthetic_conll(tmp_path / "real")


def test_tag_label_list_puts_o_first():
    assert tag_label_list([["B-PER", "O"], ["B-LOC"]]) == ("O", "B-LOC", "B-PER")
    assert tag_label_list([["B-PER"]])[0] == "O"
