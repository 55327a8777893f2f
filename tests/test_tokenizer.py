"""FunnelTokenizer: loading, saving, layout, tensors, errors, warnings, vocabulary training and the CLI."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from paddlefunnel.cli import main
from paddlefunnel.tokenizer import BatchEncoding, FunnelTokenizer, TokenizerLengthWarning

SPECIALS_IN_ORDER = ["<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "<s>", "</s>"]


def _reference(directory: Path, **kwargs):
    from transformers import FunnelTokenizer as Reference

    return Reference.from_pretrained(str(directory), **kwargs)


def _plain(encoding) -> dict:
    return {k: v for k, v in dict(encoding).items()}


def _training_lines(count: int = 2000) -> list[str]:
    from pydoc_data.topics import topics

    lines = [ln.strip() for text in topics.values() for ln in text.splitlines() if ln.strip()]
    return lines[:count]


@pytest.fixture(scope="module")
def tokenizer_corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokenizer_corpus") / "corpus.txt"
    path.write_text("\n".join(_training_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer_trained(tokenizer_corpus_file) -> FunnelTokenizer:
    return FunnelTokenizer.train(tokenizer_corpus_file, 400, show_progress=False)


# -------------------------------------------------------------------------------------------- layout
def test_pair_layout_and_token_types(tokenizer_funnel):
    enc = tokenizer_funnel("Hello world", "Second one!")
    tokens = tokenizer_funnel.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["<cls>", "hello", "world", "<sep>", "second", "one", "!", "<sep>"]
    assert enc["token_type_ids"] == [2, 0, 0, 0, 1, 1, 1, 1]
    assert enc["attention_mask"] == [1] * 8
    assert enc["input_ids"][0] == tokenizer_funnel.cls_token_id == 101
    assert enc.tokens() == tokens
    assert enc.sequence_ids() == [None, 0, 0, None, 1, 1, 1, None]


def test_offsets_point_at_the_source_text(tokenizer_funnel):
    text = "Funnel-Transformer pools hidden states; decoding restores them."
    enc = tokenizer_funnel(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    pieces = []
    for token, (start, end), special in zip(enc.tokens(), enc["offset_mapping"], enc["special_tokens_mask"]):
        if special:
            assert (start, end) == (0, 0)
        else:
            pieces.append((token.removeprefix("##"), text[start:end].lower()))
    assert pieces and all(token == source for token, source in pieces)


def test_padding_sides_and_special_tokens_mask(tokenizer_funnel):
    right = tokenizer_funnel(["a b c d", "a"], padding=True, return_special_tokens_mask=True)
    left = tokenizer_funnel(["a b c d", "a"], padding=True, padding_side="left", return_special_tokens_mask=True)
    pad = tokenizer_funnel.pad_token_id
    assert right["input_ids"][1][-3:] == [pad] * 3 and left["input_ids"][1][:3] == [pad] * 3
    assert right["attention_mask"][1] == [1, 1, 1, 0, 0, 0] and left["attention_mask"][1] == [0, 0, 0, 1, 1, 1]
    assert right["special_tokens_mask"][1] == [1, 0, 1, 1, 1, 1]
    assert right["token_type_ids"][1] == [2, 0, 0, 0, 0, 0]


def test_numpy_and_paddle_tensors(tokenizer_funnel):
    import paddle

    texts, pairs = ["one text", "and a longer second text"], ["x", "y z"]
    as_np = tokenizer_funnel(texts, pairs, padding=True, return_tensors="np", return_offsets_mapping=True)
    as_pd = tokenizer_funnel(texts, pairs, padding=True, return_tensors="pd", return_offsets_mapping=True)
    length = len(tokenizer_funnel(texts[1], pairs[1])["input_ids"])
    assert as_np["input_ids"].shape == (2, length) and as_np["input_ids"].dtype == np.int64
    assert as_np["offset_mapping"].shape == (2, length, 2)
    for key, array in as_np.items():
        assert isinstance(as_pd[key], paddle.Tensor) and as_pd[key].dtype == paddle.int64
        np.testing.assert_array_equal(as_pd[key].numpy(), array)
    single = tokenizer_funnel("one text", return_tensors="np")
    assert single["input_ids"].shape == (1, 4)


def test_squad_style_windows_as_paddle_tensors(tokenizer_funnel):
    questions, contexts = ["Who wrote it?", "When?"], ["word " * 100, "short context"]
    batch = tokenizer_funnel(
        questions, contexts, truncation="only_second", max_length=32, stride=8, return_overflowing_tokens=True,
        return_offsets_mapping=True, padding="max_length", return_tensors="pd",
    )
    windows = batch["input_ids"].shape[0]
    # 100 context tokens, 25 per window (32 - 3 specials - 4 question tokens), advancing 25 - 8 = 17: 6 windows
    assert windows == 7 and batch["input_ids"].shape == [7, 32] and batch["offset_mapping"].shape == [7, 32, 2]
    assert batch["overflow_to_sample_mapping"].numpy().tolist() == [0] * 6 + [1]
    assert batch["token_type_ids"].numpy()[:, 0].tolist() == [2] * 7


def test_tensors_of_unequal_lengths_are_refused_clearly(tokenizer_funnel):
    with pytest.raises(ValueError, match="different lengths.*padding"):
        tokenizer_funnel(["short", "a much longer text here"], return_tensors="np")
    with pytest.raises(ValueError, match="return_tensors='pt'"):
        tokenizer_funnel("text", return_tensors="pt")


def test_empty_batch_gives_empty_outputs(tokenizer_funnel):
    enc = tokenizer_funnel([], padding=True)
    assert isinstance(enc, BatchEncoding) and enc["input_ids"] == [] and enc["token_type_ids"] == []


def test_decode_roundtrip_and_id_conversions(tokenizer_funnel):
    enc = tokenizer_funnel("The café is open, isn't it?", "Yes.")
    assert tokenizer_funnel.decode(enc["input_ids"], skip_special_tokens=True) == "the cafe is open, isn ' t it? yes."
    assert tokenizer_funnel.decode(np.array(enc["input_ids"])).startswith("<cls> the cafe")
    assert tokenizer_funnel.decode([enc["input_ids"], enc["input_ids"][:3]])[1] == "<cls> the cafe"
    assert tokenizer_funnel.convert_ids_to_tokens(101) == "<cls>"
    assert tokenizer_funnel.convert_tokens_to_ids("<mask>") == 103
    assert tokenizer_funnel.convert_tokens_to_ids(["hello", "qqqzzzxx"]) == [7592, tokenizer_funnel.unk_token_id]
    ids = enc["input_ids"]
    assert tokenizer_funnel.convert_ids_to_tokens(ids, skip_special_tokens=True)[0] == "the"
    assert tokenizer_funnel.tokenize("Unaffable!") == ["una", "##ffa", "##ble", "!"]
    assert tokenizer_funnel.encode("hello") == [101, 7592, 102]


def test_special_token_attributes(tokenizer_funnel):
    assert tokenizer_funnel.special_tokens_map == {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "<sep>",
        "pad_token": "<pad>", "cls_token": "<cls>", "mask_token": "<mask>",
    }
    tok = tokenizer_funnel
    assert (tok.pad_token_id, tok.unk_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 100, 102, 103)
    assert (tokenizer_funnel.bos_token_id, tokenizer_funnel.eos_token_id) == (1, 2)
    assert len(tokenizer_funnel) == tokenizer_funnel.vocab_size == 30522


# ------------------------------------------------------------------------------------ loading / saving
def test_loads_from_dir_vocab_file_and_tokenizer_json(vocab_funnel_dir, tokenizer_funnel, tmp_path):
    text = ["Loading paths: a directory, vocab.txt itself, or tokenizer.json."]
    expected = tokenizer_funnel(text)
    assert _plain(FunnelTokenizer.from_pretrained(vocab_funnel_dir / "vocab.txt")(text)) == _plain(expected)
    assert _plain(FunnelTokenizer(str(vocab_funnel_dir / "vocab.txt"))(text)) == _plain(expected)
    tokenizer_funnel.save_pretrained(tmp_path / "saved")
    json_only = tmp_path / "json_only"
    json_only.mkdir()
    shutil.copy(tmp_path / "saved" / "tokenizer.json", json_only / "tokenizer.json")
    assert _plain(FunnelTokenizer.from_pretrained(json_only)(text)) == _plain(expected)
    assert _plain(FunnelTokenizer.from_pretrained(json_only / "tokenizer.json")(text)) == _plain(expected)
    assert _reference(json_only)(text)["input_ids"] == expected["input_ids"]


def test_save_pretrained_writes_three_files_transformers_can_load(vocab_funnel_dir, tokenizer_funnel, tmp_path):
    written = tokenizer_funnel.save_pretrained(tmp_path / "out")
    names = ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names  # no temporary files left behind
    assert sorted(p.name for p in written) == names
    assert (tmp_path / "out" / "vocab.txt").read_bytes() == (vocab_funnel_dir / "vocab.txt").read_bytes()
    config = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "FunnelTokenizer" and config["cls_token"] == "<cls>"
    reloaded = FunnelTokenizer.from_pretrained(tmp_path / "out")
    reference = _reference(tmp_path / "out")
    texts = ["Saved and loaded again <mask>.", "naïve 東京 😀", ""]
    pairs = ["second", "", "x"]
    ours = reloaded(texts, pairs, padding=True, return_offsets_mapping=True)
    ref = reference(texts, pairs, padding=True, return_offsets_mapping=True, return_token_type_ids=True)
    original = tokenizer_funnel(texts, pairs, padding=True, return_offsets_mapping=True)
    assert _plain(ours) == _plain(ref) == _plain(original)


def test_tokenizer_config_options_are_honoured(vocab_funnel_dir, tmp_path):
    shutil.copy(vocab_funnel_dir / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "model_max_length": 16, "padding_side": "left"})
    )
    ours = FunnelTokenizer.from_pretrained(tmp_path)
    assert (ours.do_lower_case, ours.model_max_length, ours.padding_side) == (False, 16, "left")
    ref = _reference(tmp_path)
    texts = ["Capitals stay: " + "word " * 20, "short"]
    got = ours(texts, padding=True, truncation=True)
    assert _plain(got) == _plain(ref(texts, padding=True, truncation=True, return_token_type_ids=True))
    assert len(got["input_ids"][0]) == 16 and got["input_ids"][1][0] == ours.pad_token_id
    assert got["input_ids"][0][1] == ours.unk_token_id  # "Capitals" is not in the uncased vocabulary
    saved = ours.save_pretrained(tmp_path / "again")
    assert FunnelTokenizer.from_pretrained(saved[0].parent).model_max_length == 16


def test_special_tokens_map_and_added_tokens_in_hub_layouts(vocab_bert_dir, tokenizer_funnel, tmp_path):
    shutil.copy(vocab_bert_dir / "vocab.txt", tmp_path / "vocab.txt")
    names = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]"}
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({**names, "mask_token": {"content": "[MASK]"}}))
    tok = FunnelTokenizer.from_pretrained(tmp_path)
    assert (tok.cls_token, tok.mask_token, tok("hi")["input_ids"]) == ("[CLS]", "[MASK]", [101, 7632, 102])
    saved = tokenizer_funnel.save_pretrained(tmp_path / "saved")[1]
    state = json.loads(saved.read_text())
    state["added_tokens"].append({"id": 30522, "content": "newword", "special": False})
    saved.write_text(json.dumps(state))
    with pytest.warns(UserWarning, match=r"ignoring 1 added non-special token\(s\) \['newword'\]"):
        FunnelTokenizer.from_pretrained(saved)


def test_missing_and_broken_vocabularies_name_the_file(vocab_bert_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        FunnelTokenizer.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(FileNotFoundError, match=r"emptydir.*vocab\.txt or tokenizer\.json"):
        FunnelTokenizer.from_pretrained(tmp_path / "emptydir")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "vocab.txt").write_text("")
    with pytest.raises(ValueError, match=r"empty.vocab\.txt.*empty"):
        FunnelTokenizer.from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"vocab_bert.*vocab\.txt.*lacks.*<pad> \(pad_token\).*<cls>.*<mask>"):
        FunnelTokenizer.from_pretrained(vocab_bert_dir)
    (tmp_path / "dup").mkdir()
    (tmp_path / "dup" / "vocab.txt").write_text("<pad>\n<unk>\n<cls>\n<sep>\n<mask>\nword\nword\n")
    with pytest.raises(ValueError, match=r"'word' appears on line 6 and again on line 7"):
        FunnelTokenizer.from_pretrained(tmp_path / "dup")
    (tmp_path / "bpe").mkdir()
    (tmp_path / "bpe" / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(ValueError, match=r"bpe.tokenizer\.json.*WordPiece.*'BPE'"):
        FunnelTokenizer.from_pretrained(tmp_path / "bpe")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"badjson.tokenizer\.json: not valid JSON"):
        FunnelTokenizer.from_pretrained(tmp_path / "badjson")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        FunnelTokenizer(tmp_path / "missing.txt")


def test_custom_special_token_names_can_rescue_a_bert_vocab(vocab_bert_dir):
    tok = FunnelTokenizer.from_pretrained(
        vocab_bert_dir, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]"
    )
    assert tok("hi")["input_ids"] == [101, 7632, 102]


def test_constructor_rejects_bad_arguments(vocab_funnel_dir):
    with pytest.raises(TypeError, match="vocab must be.*got int"):
        FunnelTokenizer(123)
    with pytest.raises(TypeError, match="do_lower_case must be a bool, got str"):
        FunnelTokenizer.from_pretrained(vocab_funnel_dir, do_lower_case="yes")
    with pytest.raises(ValueError, match="padding_side='middle'"):
        FunnelTokenizer.from_pretrained(vocab_funnel_dir, padding_side="middle")
    with pytest.raises(ValueError, match="vocab: expected str tokens with ids 0..1"):
        FunnelTokenizer({"<pad>": 0, "<unk>": 5})


def test_save_into_a_file_path_fails_clearly(tokenizer_funnel, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="afile"):
        tokenizer_funnel.save_pretrained(tmp_path / "afile")


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((123,), r"text must be a str or a list of str, got int"),
        ((None,), r"text must be .* got NoneType"),
        ((["fine", 3],), r"text\[1\] must be a str, got int"),
        (([["pre", "tokenized"]],), r"text\[0\] is a list: pre-tokenized input is not supported"),
        (("a", 5), r"text_pair must be a str .* got int"),
        ((["a"], "b"), r"text_pair must be a list of str .* got str"),
        ((["a", "b"], ["x", b"y"]), r"text_pair\[1\] must be a str, got bytes"),
    ],
)
def test_non_string_input_raises_type_error_naming_argument(tokenizer_funnel, args, pattern):
    with pytest.raises(TypeError, match=pattern):
        tokenizer_funnel(*args)


def test_other_entry_points_check_types(tokenizer_funnel):
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        tokenizer_funnel.tokenize(b"bytes")
    with pytest.raises(TypeError, match="pair must be a str or None, got int"):
        tokenizer_funnel.tokenize("a", 3)
    with pytest.raises(TypeError, match="text must be a str, got list"):
        tokenizer_funnel.encode(["a"])
    with pytest.raises(TypeError, match="ids must be a list of int.*got str"):
        tokenizer_funnel.decode("abc")
    with pytest.raises(TypeError, match="ids must contain only int, got str"):
        tokenizer_funnel.decode([101, "x"])
    with pytest.raises(TypeError, match="ids must contain only int, got float"):
        tokenizer_funnel.decode([101, 2.5, 102])
    with pytest.raises(TypeError, match="tokens must contain only str, got int"):
        tokenizer_funnel.convert_tokens_to_ids(["a", 1])


def test_text_that_is_not_valid_unicode_is_named(tokenizer_funnel):
    with pytest.raises(ValueError, match=r"text_pair\[1\] is not valid Unicode: surrogates not allowed"):
        tokenizer_funnel(["fine", "also fine"], ["ok", "bad \ud800 surrogate"])
    with pytest.raises(ValueError, match=r"^text is not valid Unicode"):
        tokenizer_funnel("\udcff")


def test_backend_changes_made_by_the_caller_do_not_leak_into_calls(tokenizer_funnel):
    expected = tokenizer_funnel("a b c d e f", truncation=True, max_length=5)["input_ids"]
    tokenizer_funnel.backend_tokenizer.no_truncation()
    assert tokenizer_funnel("a b c d e f", truncation=True, max_length=5)["input_ids"] == expected
    tokenizer_funnel.backend_tokenizer.enable_truncation(3)
    assert len(tokenizer_funnel("a b c d e f")["input_ids"]) == 8


def test_batch_length_mismatch(tokenizer_funnel):
    with pytest.raises(ValueError, match="text has 2 entries but text_pair has 1"):
        tokenizer_funnel(["a", "b"], ["x"])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"padding": "sideways"}, r"padding='sideways' is invalid.*'longest', 'max_length', 'do_not_pad'"),
        ({"truncation": "middle"}, r"truncation='middle' is invalid.*only_second"),
        ({"max_length": 0}, r"max_length=0 is invalid: expected an integer >= 1"),
        ({"max_length": "5"}, r"max_length='5' is invalid"),
        ({"stride": -1, "truncation": True, "max_length": 8}, r"stride=-1 is invalid"),
        ({"padding": True, "padding_side": "up"}, r"padding_side='up' is invalid"),
        (
            {"padding": True, "truncation": True, "max_length": 10, "pad_to_multiple_of": 4},
            r"not a multiple of pad_to_multiple_of=4",
        ),
    ],
)
def test_bad_options_raise_value_error_naming_them(tokenizer_funnel, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        tokenizer_funnel("some text", **kwargs)


def test_impossible_truncations_raise_value_errors_not_panics(tokenizer_funnel, tokenizer_reference):
    long_question = "why " * 24
    context = "context words " * 40
    # The reference panics inside Rust here (pyo3 PanicException); ours explains which argument to change.
    windows = dict(truncation="only_second", max_length=30, stride=5, return_overflowing_tokens=True)
    with pytest.raises(BaseException) as ref_err:
        tokenizer_reference(long_question, context, **windows)
    assert type(ref_err.value).__name__ == "PanicException"
    with pytest.raises(ValueError, match=r"stride=5 is too large for max_length=30"):
        tokenizer_funnel(long_question, context, **windows)
    with pytest.raises(ValueError, match=r"stride=8 is too large for max_length=10: a window holds at most 8"):
        tokenizer_funnel("text", truncation=True, max_length=10, stride=8)
    with pytest.raises(ValueError, match=r"truncation='only_first' cannot fit a pair into max_length=10"):
        tokenizer_funnel("a b", context, truncation="only_first", max_length=10)
    with pytest.raises(ValueError, match=r"truncation='only_second' needs a text_pair"):
        tokenizer_funnel(context, truncation="only_second", max_length=10)
    assert tokenizer_funnel("ok", context, truncation="only_second", max_length=10)["input_ids"][:2] == [101, 7929]


def test_out_of_range_ids_are_rejected(tokenizer_funnel):
    with pytest.raises(ValueError, match=r"id 30522, outside the vocabulary \[0, 30522\)"):
        tokenizer_funnel.decode([101, 30522])
    with pytest.raises(ValueError, match=r"id -1"):
        tokenizer_funnel.decode(np.array([-1, 5]))
    with pytest.raises(ValueError, match=r"ids=999999 is outside the vocabulary"):
        tokenizer_funnel.convert_ids_to_tokens(999999)


# ----------------------------------------------------------------------------------- too-long inputs
def _length_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, TokenizerLengthWarning)]


def test_too_long_without_truncation_matches_reference_and_warns(tokenizer_funnel, tokenizer_reference):
    text = "a fairly long sentence that certainly needs more than eight tokens"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ours = tokenizer_funnel(text, truncation=False, max_length=8, padding="max_length")
    ref = tokenizer_reference(text, truncation=False, max_length=8, padding="max_length", return_token_type_ids=True)
    length = len(tokenizer_funnel(text)["input_ids"])
    assert _plain(ours) == _plain(ref) and len(ours["input_ids"]) == length > 8
    messages = _length_warnings(record)
    assert len(messages) == 1 and f"{length} tokens, more than max_length=8" in messages[0]


def test_longer_than_model_max_length_warns_and_truncation_uses_it(vocab_funnel_dir):
    ours = FunnelTokenizer.from_pretrained(vocab_funnel_dir, model_max_length=16)
    ref = _reference(vocab_funnel_dir, model_max_length=16)
    text = "word " * 30
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        full = ours(text)
        cut = ours(text, truncation=True)
    assert _plain(full) == _plain(ref(text, return_token_type_ids=True)) and len(full["input_ids"]) == 32
    assert _plain(cut) == _plain(ref(text, truncation=True, return_token_type_ids=True)) and len(cut["input_ids"]) == 16
    messages = _length_warnings(record)
    assert len(messages) == 1 and "more than model_max_length=16" in messages[0]


def test_no_length_warning_within_limits(tokenizer_funnel):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tokenizer_funnel(["short", "text"], truncation=True, max_length=8, padding="max_length")
        tokenizer_funnel("x " * 5000)  # model_max_length unknown (no tokenizer_config): no limit to exceed
    assert _length_warnings(record) == []


# ------------------------------------------------------------------------------------------ training
def test_trained_vocabulary_has_funnel_specials_first(tokenizer_trained, tokenizer_corpus_file):
    vocab = tokenizer_trained.get_vocab()
    assert [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])[:7]] == SPECIALS_IN_ORDER
    assert 200 < len(vocab) <= 400 and tokenizer_trained.model_max_length == 512
    line = tokenizer_corpus_file.read_text(encoding="utf-8").splitlines()[5]
    enc = tokenizer_trained(line, "a pair")
    assert enc["input_ids"][0] == 2 and enc["token_type_ids"][0] == 2 and enc["input_ids"][-1] == 3
    assert tokenizer_trained.unk_token_id not in enc["input_ids"]  # every character of the corpus is covered
    unseen = tokenizer_trained("\u4e2d")["input_ids"]  # a character the corpus never had
    assert tokenizer_trained.convert_ids_to_tokens(unseen) == ["<cls>", "<unk>", "<sep>"]


def test_training_is_deterministic_and_iterator_equals_files(tokenizer_trained, tokenizer_corpus_file):
    again = FunnelTokenizer.train([str(tokenizer_corpus_file)], 400, show_progress=False)
    from_memory = FunnelTokenizer.train_from_iterator(_training_lines(), 400, show_progress=False)
    assert again.get_vocab() == tokenizer_trained.get_vocab() == from_memory.get_vocab()


def test_trained_tokenizer_saves_and_matches_reference(tokenizer_trained, tmp_path):
    tokenizer_trained.save_pretrained(tmp_path / "trained")
    ref = _reference(tmp_path / "trained")
    lines = _training_lines()[:600]
    options = dict(truncation=True, max_length=48, padding=True, return_offsets_mapping=True)
    ours = tokenizer_trained(lines, lines[::-1], **options)
    theirs = ref(lines, lines[::-1], return_token_type_ids=True, **options)
    assert _plain(ours) == _plain(theirs)
    assert ref.model_max_length == 512 and ref.cls_token_id == 2


def test_cased_training_keeps_capitals():
    texts = ["Paris Paris Paris London London Berlin"] * 50
    cased = FunnelTokenizer.train_from_iterator(texts, 40, do_lower_case=False, show_progress=False)
    uncased = FunnelTokenizer.train_from_iterator(texts, 40, show_progress=False)
    assert "Paris" in cased.get_vocab() and "paris" not in cased.get_vocab()
    assert "paris" in uncased.get_vocab()
    assert cased.tokenize("Paris London") == ["Paris", "London"]


def test_small_corpus_warns_that_vocab_size_is_not_reached():
    with pytest.warns(UserWarning, match=r"only supports \d+ tokens \(asked for vocab_size=5000\)"):
        tok = FunnelTokenizer.train_from_iterator(["tiny corpus of words", "tiny words"], 5000, show_progress=False)
    assert len(tok) < 100


def test_training_input_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab_size=5 is invalid: expected an integer >= 8"):
        FunnelTokenizer.train_from_iterator(["a b"], 5)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        FunnelTokenizer.train_from_iterator(["a", 1], 100)
    with pytest.raises(TypeError, match="texts must be an iterable of str.*got str"):
        FunnelTokenizer.train_from_iterator("abc", 100)
    with pytest.raises(ValueError, match="no non-whitespace text"):
        FunnelTokenizer.train_from_iterator(["", "  "], 100)
    with pytest.raises(TypeError, match="do_lower_case must be a bool"):
        FunnelTokenizer.train_from_iterator(["a b"], 100, do_lower_case="no")
    with pytest.raises(FileNotFoundError, match="absent.txt: corpus file not found"):
        FunnelTokenizer.train([tmp_path / "absent.txt"], 100)
    (tmp_path / "blank.txt").write_text("")
    with pytest.raises(ValueError, match="all empty"):
        FunnelTokenizer.train(tmp_path / "blank.txt", 100)


def test_cli_vocab_train_writes_a_loadable_directory(tokenizer_corpus_file, tokenizer_trained, tmp_path, capsys):
    out = tmp_path / "cli_vocab"
    code = main(["vocab", "train", str(tokenizer_corpus_file), "--vocab-size", "400", "--out", str(out), "--quiet"])
    assert code == 0 and "400-token vocabulary" in capsys.readouterr().out
    loaded = FunnelTokenizer.from_pretrained(out)
    assert loaded.get_vocab() == tokenizer_trained.get_vocab()
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]


def test_cli_vocab_train_reports_missing_corpus(tmp_path, capsys):
    code = main(["vocab", "train", str(tmp_path / "nope.txt"), "--vocab-size", "100", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "nope.txt: corpus file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
