"""paddlefunnel.FunnelTokenizer against transformers.FunnelTokenizer (5.23) on the same realistic vocabulary.

Every comparison runs both tokenizers on the same inputs and demands identical input_ids, token_type_ids,
attention_mask, offsets, special-token masks, overflow windows and sample mappings: any difference fails.
"""

from __future__ import annotations

import random
import unicodedata
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paddlefunnel.tokenizer import FunnelTokenizer

# Deterministic (derandomize, no example database) so CI sees the same examples every run.
HYPOTHESIS = settings(
    max_examples=500, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Funnel-Transformer compresses the sequence of hidden states, then decodes it back (Dai et al., 2020).",
    "Wait... what?! You've got to be kidding me -- that's \"impossible\", isn't it?",
    "She said: 'I'll be there at 10:30 a.m. on Tuesday, 3/14/2023.'",
    "Prices rose 12.5% to $1,299.99 (about EUR 1.2k) in Q3; analysts expected +8%.",
    "E-mail john.doe@example.com or visit https://example.org/path?query=1&lang=en#top for details.",
    "In 1905, Einstein published four papers; one introduced E=mc^2.",
    "Don't split contractions wrongly: can't, won't, shouldn't've, y'all.",
    "Hyphenated words such as state-of-the-art, well-known and mother-in-law appear often.",
    "A list: (a) apples, [b] bananas, {c} cherries; <d> dates & figs.",
    "Tabs\tand\nnewlines\r\nshould behave like spaces.",
    "UPPER CASE SHOUTING AND MiXeD cAsE tExT are lower-cased by the tokenizer.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France, with an estimated population of 2,102,650.",
    "Who wrote 'Pride and Prejudice', and when was it first published?",
    "The Amazon rainforest covers much of the Amazon basin of South America.",
    "#hashtags, @mentions and ~tildes~ mix with ***stars*** and __underscores__.",
    "Math: 3 < 4 > 2, x_1 + x_2 = 10, f(x) = x**2 / 7.",
    "A sentence without a final period",
    "Unicode quotes \u201clike these\u201d and \u2018these\u2019 and dashes \u2013 \u2014 are punctuation.",
]

ACCENTED = [
    "caf\u00e9", "na\u00efve", "\u00c5ngstr\u00f6m", "S\u00e3o Paulo", "Z\u00fcrich", "cr\u00e8me br\u00fbl\u00e9e",
    "Stra\u00dfe", "fa\u00e7ade", "\u0141\u00f3d\u017a", "Dvo\u0159\u00e1k", "Bj\u00f6rk Gu\u00f0mundsd\u00f3ttir",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u", "\u00e9l\u00e8ve \u00e0 l'\u00e9cole", "pi\u00f1ata jalape\u00f1o",
    "\u0130stanbul \u0131\u015f\u0131k", "\u00c6sir \u00f8re \u00e5", "\u1e9e capital sharp s",
    "e\u0301\u0300\u0302 stacked",
]

SCRIPTS = [
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002", "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8",
    "\u6771\u4eac\u3067\u30e9\u30fc\u30e1\u30f3\u3092\u98df\u3079\u307e\u3057\u305f\u3002",
    "\u304b\u305f\u304b\u306a \u30ab\u30bf\u30ab\u30ca", "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4.",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0644\u063a\u0629",
    "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u044f\u0437\u044b\u043a",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "mixed \u4e2d\u6587and English\u5b57", "\U00020000\U0002a6d6 extension-B ideographs", "\uf900\ufa0a compatibility",
    "\u3400\u4dbf ext-A", "\u1100\u1161 jamo", "\u2f00\u2fd5 radicals",
]

EMOJI = [
    "\U0001f600", "I \u2764\ufe0f NY", "thumbs \U0001f44d\U0001f3fd up",
    "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "flag \U0001f1eb\U0001f1f7 and \U0001f1ef\U0001f1f5", "keycap 1\ufe0f\u20e3", "\U0001f389\U0001f389\U0001f389party",
    "cat\U0001f431dog\U0001f436", "\u2600\u2601\u2602 weather", "\U0001f9d1\u200d\U0001f4bb coding",
]

CONTROL = [
    "\x00", "a\x00b", "bell\x07ring", "esc\x1b[31mred\x1b[0m", "del\x7fete", "c1\x80\x85\x9fctl",
    "zero\u200bwidth", "bom\ufeffmark", "nb\u00a0sp", "em\u2003space", "ideographic\u3000space",
    "line\u2028sep", "para\u2029sep", "rep\ufffdlacement", "private\ue000use", "soft\u00adhyphen",
    "rtl\u200fmark", "joiner\u200dnon\u200cjoiner", "\u0301leading combining", "tab\x0bvt\x0cff",
    "\x1c\x1d\x1e\x1f separators", "\ufff0\ufff9 specials",
]

LONG = [
    "a" * 99, "a" * 100, "a" * 101, "b" * 150, "x" * 300, "1234567890" * 12,
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3, "https://example.com/" + "very-long-path-segment/" * 8,
    "word " * 200, "\u4e2d" * 120, "\U0001f600" * 50, "supercalifragilisticexpialidocious",
]

BLANK = ["", " ", "  ", "\t", "\n", "\n\n", " \r\n ", "\u3000", "\u00a0", "\u2003\u2002", "\u200b", "\x00\x00"]

SPECIAL_TEXT = [
    "<cls>", "<sep>", "<pad>", "<unk>", "<mask>", "<s>", "</s>", "<eod>", "<eop>", "hello <mask> world",
    "a<sep>b<cls>c", "<s>start and end</s>", "<CLS> upper", "[CLS] bert [SEP] style [MASK]", "< cls >", "<<cls>>",
    "<pad><pad><pad>", "x</s>y<s>z",
]


def _prose_lines(count: int, rng: random.Random) -> list[str]:
    """Real English technical prose: the Python documentation topics shipped with the standard library."""
    from pydoc_data.topics import topics

    lines = sorted({ln.strip() for text in topics.values() for ln in text.splitlines() if len(ln.strip()) > 3})
    return rng.sample(lines, count)


def build_corpus() -> list[str]:
    rng = random.Random(20240503)
    fixed = PROSE + ACCENTED + SCRIPTS + EMOJI + CONTROL + LONG + BLANK + SPECIAL_TEXT
    decomposed = [unicodedata.normalize("NFD", t) for t in ACCENTED + PROSE[:5]]
    upper = [t.upper() for t in PROSE + ACCENTED]
    prose = _prose_lines(1450, rng)
    fragments = fixed + decomposed + prose[:200]
    separators = ["", " ", "  ", ", ", ". ", "\n", "\t", "-", "/"]
    mixed = []
    for _ in range(1100):
        parts = rng.sample(fragments, rng.randint(1, 4))
        mixed.append(rng.choice(separators).join(parts))
    # Cut prose at random character positions: words split mid-way, dangling quotes and brackets.
    cut = []
    for line in rng.sample(prose, 300):
        a, b = sorted(rng.randrange(len(line) + 1) for _ in range(2))
        cut.append(line[a:b])
    corpus = fixed + decomposed + upper + prose + mixed + cut
    assert len(corpus) >= 3000
    return corpus


CORPUS = build_corpus()


def _pairs(texts: list[str]) -> tuple[list[str], list[str]]:
    n = len(texts)
    return texts, [texts[(i * 7919 + 13) % n] for i in range(n)]


def as_plain(encoding: Any) -> dict[str, Any]:
    return {key: (value.tolist() if isinstance(value, np.ndarray) else value) for key, value in dict(encoding).items()}


def assert_same(ours: Any, ref: Any, inputs: Any = None) -> None:
    """Equal keys and values; on a mismatch name the first differing row and its input."""
    ours, ref = as_plain(ours), as_plain(ref)
    assert sorted(ours) == sorted(ref), f"keys differ: ours {sorted(ours)} vs reference {sorted(ref)}"
    for key in ref:
        if ours[key] == ref[key]:
            continue
        rows_o, rows_r = ours[key], ref[key]
        assert len(rows_o) == len(rows_r), f"{key}: {len(rows_o)} rows vs reference {len(rows_r)}"
        row = next(i for i, (a, b) in enumerate(zip(rows_o, rows_r)) if a != b)
        sample = None
        if inputs is not None and "overflow_to_sample_mapping" in ref:
            sample = inputs[ref["overflow_to_sample_mapping"][row]]
        elif inputs is not None and row < len(inputs):
            sample = inputs[row]
        pytest.fail(f"{key} differs at row {row} (input {sample!r}):\n ours {rows_o[row]}\n  ref {rows_r[row]}")


def run_both(ours: Any, ref: Any, text: Any, pair: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the too-long warning is tested elsewhere; here only outputs count
        a = ours(text, pair, return_offsets_mapping=True, return_special_tokens_mask=True, **kwargs)
        b = ref(
            text,
            pair,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_token_type_ids=True,
            **kwargs,
        )
    return a, b


def token_lengths(ref: Any, texts: list[str]) -> list[int]:
    return [len(ids) for ids in ref(texts, add_special_tokens=False)["input_ids"]]


# ------------------------------------------------------------------------------------ batched corpus
SINGLE_MODES = [
    {},
    {"padding": True},
    {"padding": "longest", "padding_side": "left"},
    {"truncation": True, "max_length": 16},
    {"max_length": 32},  # max_length alone: the reference switches truncation on
    {"truncation": "only_first", "max_length": 24},
    {"truncation": "longest_first", "max_length": 48, "padding": "max_length"},
    {"truncation": True, "max_length": 48, "padding": "max_length", "padding_side": "left"},
    {"truncation": True, "max_length": 20, "stride": 5, "return_overflowing_tokens": True},
    {"truncation": True, "max_length": 20, "stride": 5, "return_overflowing_tokens": True, "padding": "max_length"},
    {"truncation": True, "max_length": 9, "stride": 0, "return_overflowing_tokens": True, "padding": True},
    {"truncation": False, "max_length": 16, "padding": "max_length"},
    {"truncation": "do_not_truncate", "padding": True, "pad_to_multiple_of": 8},
    {"truncation": True, "max_length": 24, "padding": "max_length", "pad_to_multiple_of": 8},
    {"add_special_tokens": False, "truncation": True, "max_length": 10},
    {"add_special_tokens": False, "padding": True, "padding_side": "left"},
    {"return_length": True, "return_attention_mask": False},
]

PAIR_MODES = [
    {},
    {"padding": True},
    {"padding": True, "padding_side": "left"},
    {"truncation": True, "max_length": 24},
    {"truncation": "longest_first", "max_length": 64, "padding": "max_length", "padding_side": "left"},
    {"truncation": "longest_first", "max_length": 40, "stride": 8, "return_overflowing_tokens": True},
    {"truncation": True, "max_length": 24, "stride": 4, "return_overflowing_tokens": True, "padding": "max_length"},
    {"truncation": False, "max_length": 20, "padding": "max_length"},
    {"add_special_tokens": False, "truncation": True, "max_length": 12, "padding": True},
]


@pytest.mark.parametrize("mode", SINGLE_MODES, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items()) or "default")
def test_single_texts_match_reference(tokenizer_funnel, tokenizer_reference, mode):
    ours, ref = run_both(tokenizer_funnel, tokenizer_reference, CORPUS, **mode)
    assert_same(ours, ref, CORPUS)
    assert len(ours["input_ids"]) >= len(CORPUS)


@pytest.mark.parametrize("mode", PAIR_MODES, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items()) or "default")
def test_pairs_match_reference(tokenizer_funnel, tokenizer_reference, mode):
    first, second = _pairs(CORPUS)
    ours, ref = run_both(tokenizer_funnel, tokenizer_reference, first, second, **mode)
    assert_same(ours, ref, list(zip(first, second)))
    assert all(2 in types for types in ours["token_type_ids"]) or mode.get("add_special_tokens") is False


@pytest.mark.parametrize(
    ("strategy", "max_length", "stride", "padding"),
    [
        ("only_second", 64, 16, "max_length"),  # SQuAD-style windows over the context
        ("only_second", 32, 0, False),
        ("only_second", 48, 20, True),
        ("only_first", 40, 6, False),
        ("only_first", 24, 2, "max_length"),
    ],
)
def test_overflow_windows_match_reference(tokenizer_funnel, tokenizer_reference, strategy, max_length, stride, padding):
    """Only pairs the reference can truncate: the kept sequence must leave room for more than `stride` tokens."""
    first, second = _pairs(CORPUS)
    if strategy == "only_second":  # a question from the corpus, a long context built from several lines
        second = [" ".join(second[i : i + 4]) for i in range(len(second))]
    kept = token_lengths(tokenizer_reference, first if strategy == "only_second" else second)
    budget = max_length - 3
    rows = [i for i, n in enumerate(kept) if budget - n > stride]
    first, second = [first[i] for i in rows], [second[i] for i in rows]
    assert len(rows) > 1000
    ours, ref = run_both(
        tokenizer_funnel,
        tokenizer_reference,
        first,
        second,
        truncation=strategy,
        max_length=max_length,
        stride=stride,
        padding=padding,
        return_overflowing_tokens=True,
    )
    assert_same(ours, ref, list(zip(first, second)))
    assert len(ours["input_ids"]) > len(rows)  # windows were actually produced
    assert ours["overflow_to_sample_mapping"] == ref["overflow_to_sample_mapping"]


def test_windows_cover_the_context_with_the_requested_overlap(tokenizer_funnel):
    """Independent of the reference: consecutive windows of one example share exactly `stride` context tokens."""
    question, context = "Who?", " ".join(PROSE)
    enc = tokenizer_funnel(
        question, context, truncation="only_second", max_length=32, stride=6, return_overflowing_tokens=True
    )
    assert set(enc["overflow_to_sample_mapping"]) == {0} and len(enc["input_ids"]) >= 3
    contexts = []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        contexts.append([t for t, s in zip(enc["input_ids"][i], seq) if s == 1])
    for prev, nxt in zip(contexts, contexts[1:]):
        assert prev[-6:] == nxt[:6]
    full = tokenizer_funnel(context, add_special_tokens=False)["input_ids"]
    stitched = contexts[0] + [t for c in contexts[1:] for t in c[6:]]
    assert stitched == full


def test_unbatched_calls_match_reference(tokenizer_funnel, tokenizer_reference):
    texts = CORPUS[::10]
    for i, text in enumerate(texts):
        pair = texts[-1 - i]
        for kwargs in ({}, {"truncation": True, "max_length": 12, "padding": "max_length"}):
            assert_same(*run_both(tokenizer_funnel, tokenizer_reference, text, **kwargs))
            assert_same(*run_both(tokenizer_funnel, tokenizer_reference, text, pair, **kwargs))
        assert_same(
            *run_both(
                tokenizer_funnel, tokenizer_reference, text, pair, truncation="longest_first", max_length=16,
                stride=2, return_overflowing_tokens=True,
            )
        )


def test_numpy_tensors_match_reference(tokenizer_funnel, tokenizer_reference):
    first, second = _pairs(CORPUS[:500])
    ours, ref = run_both(
        tokenizer_funnel, tokenizer_reference, first, second, padding=True, truncation=True, max_length=40,
        return_tensors="np",
    )
    for key in ref:
        assert isinstance(ours[key], np.ndarray) and ours[key].dtype == ref[key].dtype
        np.testing.assert_array_equal(ours[key], ref[key])
    assert ours["offset_mapping"].shape == (500, 40, 2)


def test_tokenize_decode_and_conversions_match_reference(tokenizer_funnel, tokenizer_reference):
    texts = CORPUS[::3]
    assert [tokenizer_funnel.tokenize(t) for t in texts] == [tokenizer_reference.tokenize(t) for t in texts]
    ids = tokenizer_reference(texts)["input_ids"]
    for skip in (False, True):
        assert tokenizer_funnel.batch_decode(ids, skip_special_tokens=skip) == tokenizer_reference.batch_decode(
            ids, skip_special_tokens=skip
        )
    flat = [i for row in ids[:200] for i in row]
    assert tokenizer_funnel.convert_ids_to_tokens(flat) == tokenizer_reference.convert_ids_to_tokens(flat)
    tokens = tokenizer_reference.convert_ids_to_tokens(flat) + ["not-a-token", "<cls>", "##ing"]
    assert tokenizer_funnel.convert_tokens_to_ids(tokens) == tokenizer_reference.convert_tokens_to_ids(tokens)
    assert tokenizer_funnel.all_special_ids == tokenizer_reference.all_special_ids
    assert tokenizer_funnel.get_vocab() == tokenizer_reference.get_vocab()


def test_vocab_without_bos_eos_appends_them_like_reference(vocab_funnel_dir_without_bos_eos):
    from transformers import FunnelTokenizer as Reference

    ours = FunnelTokenizer.from_pretrained(vocab_funnel_dir_without_bos_eos)
    ref = Reference.from_pretrained(str(vocab_funnel_dir_without_bos_eos))
    assert (ours.bos_token_id, ours.eos_token_id) == (30522, 30523) == (ref.bos_token_id, ref.eos_token_id)
    assert len(ours) == len(ref) == 30524 and ours.vocab_size == 30522
    first, second = _pairs(CORPUS[:600])
    assert_same(*run_both(ours, ref, first, second, padding=True, truncation=True, max_length=32), first)


@pytest.mark.parametrize(
    "options",
    [
        {"do_lower_case": False},
        {"strip_accents": False},
        {"tokenize_chinese_chars": False},
        {"truncation_side": "left"},
    ],
)
def test_options_match_reference(vocab_funnel_dir, options):
    from transformers import FunnelTokenizer as Reference

    ours = FunnelTokenizer.from_pretrained(vocab_funnel_dir, **options)
    ref = Reference.from_pretrained(str(vocab_funnel_dir), **options)
    texts = CORPUS[:800]
    assert_same(*run_both(ours, ref, texts, truncation=True, max_length=20, padding=True), texts)
    base = FunnelTokenizer.from_pretrained(vocab_funnel_dir)
    # The option really changes the output, so the parity above is not parity of the defaults.
    cut = dict(truncation=True, max_length=20)
    assert ours(texts, **cut)["input_ids"] != base(texts, **cut)["input_ids"]


# ------------------------------------------------------------------------------------------ hypothesis
FRAGMENTS = (
    SPECIAL_TEXT + EMOJI + CONTROL + ACCENTED + SCRIPTS[:8]
    + ["the", "The", "un", "##able", "running", "'s", "n't", " ", "  ", "\t", "\n", ".", ",", "!?", "...", "(", ")",
       "\"", "'", "-", "$", "%", "1", "2024", "e\u0301", "A" * 101, "\u00e9", "\u4e2d", "\U0001f600"]
)
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    st.text(st.sampled_from("ab \t\n.,'\u00e9\u4e2d\U0001f600<>/s"), max_size=40),
    st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join),
)
OPTIONS = st.fixed_dictionaries(
    {
        "padding": st.sampled_from([False, True, "longest", "max_length", "do_not_pad"]),
        "truncation": st.sampled_from(
            [None, False, True, "longest_first", "only_first", "only_second", "do_not_truncate"]
        ),
        "max_length": st.one_of(st.none(), st.integers(4, 40)),
        "stride": st.integers(0, 4),
        "padding_side": st.sampled_from([None, "left", "right"]),
        "return_overflowing_tokens": st.booleans(),
        "add_special_tokens": st.booleans(),
    }
)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", call()
    except BaseException as err:  # the reference can raise a Rust panic (a BaseException) on a too-large stride
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        return "error", err


def _compare_outcomes(ours_tok: Any, ref_tok: Any, text: str, pair: Any, options: dict[str, Any]) -> None:
    kinds = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    ours = _outcome(lambda: ours_tok(text, pair, **kinds, **options))
    ref = _outcome(lambda: ref_tok(text, pair, **kinds, return_token_type_ids=True, **options))
    if ref[0] == "ok":
        if ours[0] == "error" and "a window holds at most" in str(ours[1]):
            # Deliberate: ours refuses a stride no window can honour even when this input needs no window.
            specials = 0 if not options["add_special_tokens"] else (3 if pair is not None else 2)
            assert options["max_length"] is not None and options["stride"] >= options["max_length"] - specials
            return
        assert ours[0] == "ok", f"reference encoded it, ours raised {ours[1]!r}"
        assert_same(ours[1], ref[1], [text])
        return
    # Where the reference fails, ours must fail too, with a ValueError that says what to change.
    assert ours[0] == "error", f"reference raised {ref[1]!r} but ours returned {ours[1]}"
    assert isinstance(ours[1], ValueError), repr(ours[1])
    assert any(word in str(ours[1]) for word in ("stride", "truncation", "max_length"))


@HYPOTHESIS
@given(text=TEXT, options=OPTIONS)
def test_generated_single_texts_match_reference(tokenizer_funnel, tokenizer_reference, text, options):
    _compare_outcomes(tokenizer_funnel, tokenizer_reference, text, None, options)


@HYPOTHESIS
@given(text=TEXT, pair=TEXT, options=OPTIONS)
def test_generated_pairs_match_reference(tokenizer_funnel, tokenizer_reference, text, pair, options):
    _compare_outcomes(tokenizer_funnel, tokenizer_reference, text, pair, options)


@settings(HYPOTHESIS, max_examples=200)
@given(texts=st.lists(TEXT, min_size=1, max_size=6), options=OPTIONS)
def test_generated_batches_match_reference(tokenizer_funnel, tokenizer_reference, texts, options):
    pairs = list(reversed(texts))
    _compare_outcomes(tokenizer_funnel, tokenizer_reference, texts, pairs, options)
