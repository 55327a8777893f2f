"""Funnel's special tokens: their names, defaults and orders, and the check that a vocabulary has them."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputError

# Special tokens in the order transformers appends the ones missing from a vocabulary (so appended ids agree).
SPECIAL_TOKEN_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
DEFAULT_SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "cls_token": "<cls>",
    "sep_token": "<sep>",
    "mask_token": "<mask>",
    "bos_token": "<s>",
    "eos_token": "</s>",
}
# The model cannot run without these; <s> and </s> are appended like the reference does when absent.
REQUIRED_SPECIAL_TOKENS = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
# Order of the specials at the head of a freshly trained vocabulary (the reference's default vocab order).
TRAINED_SPECIAL_ORDER = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token", "bos_token", "eos_token")


def check_special_tokens(specials: Mapping[str, object], vocab: Mapping[str, int], source: str) -> None:
    """Every name a non-empty str, and the required ones in `vocab` (`source` names where it came from)."""
    for name, token in specials.items():
        if not isinstance(token, str) or not token:
            raise TypeError(f"{name} must be a non-empty str, got {token!r}")
    missing = [f"{specials[name]} ({name})" for name in REQUIRED_SPECIAL_TOKENS if specials[name] not in vocab]
    if missing:
        raise InputError(
            f"{source}: the vocabulary lacks the special token(s) {', '.join(missing)}; a Funnel vocabulary "
            "needs <pad> <unk> <cls> <sep> <mask> (rename BERT's [PAD] [UNK] [CLS] [SEP] [MASK], or pass the "
            "names your vocabulary uses)"
        )
