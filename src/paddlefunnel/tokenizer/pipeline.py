"""The Rust pipeline of the reference: BertNormalizer -> BertPreTokenizer -> WordPiece -> `<cls>:2 A:0 <sep>:0
[B:1 <sep>:1]`, built from a vocabulary and the tokenizer's options."""

from __future__ import annotations

from collections.abc import Mapping

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .specials import SPECIAL_TOKEN_ATTRIBUTES

CLS_TOKEN_TYPE_ID = 2
PAD_TOKEN_TYPE_ID = 0


def bert_normalizer(
    clean_text: bool, tokenize_chinese_chars: bool, strip_accents: bool | None, do_lower_case: bool
) -> normalizers.BertNormalizer:
    return normalizers.BertNormalizer(
        clean_text=clean_text,
        handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents,
        lowercase=do_lower_case,
    )


def build_backend(
    vocab: dict[str, int],
    specials: Mapping[str, str],
    *,
    wordpieces_prefix: str,
    max_input_chars_per_word: int,
    normalizer: normalizers.BertNormalizer,
) -> Tokenizer:
    """The full encoder/decoder, with truncation and padding off (calls switch them on as they need)."""
    backend = Tokenizer(
        WordPiece(
            vocab,
            unk_token=specials["unk_token"],
            continuing_subword_prefix=wordpieces_prefix,
            max_input_chars_per_word=max_input_chars_per_word,
        )
    )
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=wordpieces_prefix)
    # Specials are matched in raw text (not normalised), as in the reference; absent ones get the next ids.
    backend.add_special_tokens(
        [AddedToken(specials[name], special=True, normalized=False) for name in SPECIAL_TOKEN_ATTRIBUTES]
    )
    cls_token, sep_token = specials["cls_token"], specials["sep_token"]
    cls_id, sep_id = backend.token_to_id(cls_token), backend.token_to_id(sep_token)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:{CLS_TOKEN_TYPE_ID} $A:0 {sep_token}:0",
        pair=f"{cls_token}:{CLS_TOKEN_TYPE_ID} $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, cls_id), (sep_token, sep_id)],
    )
    backend.no_truncation()
    backend.no_padding()
    return backend
