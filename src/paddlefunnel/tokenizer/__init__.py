"""Funnel-Transformer WordPiece tokenizer on the `tokenizers` (Rust) backend, id-for-id equal to `transformers`.

Released Funnel checkpoints were trained on ids from a BERT-style uncased WordPiece vocabulary whose specials are
`<cls> <sep> <pad> <unk> <mask> <s> </s>`; fine-tuning them only works if every id, token type, offset and overflow
window is exactly what `transformers.FunnelTokenizer` (5.23) produces. So this package builds the same Rust pipeline
(BertNormalizer -> BertPreTokenizer -> WordPiece -> `<cls>:2 A:0 <sep>:0 [B:1 <sep>:1]`) and follows the reference's
rules for picking padding/truncation strategies; the per-token work all happens in Rust.

Deliberate differences from the reference, all on bad input: non-string text raises TypeError (the reference says
ValueError), out-of-range ids raise instead of turning into None or vanishing, a stride that cannot fit raises
ValueError instead of a Rust panic, and outputs longer than the limit come with a `warnings.warn`.

Modules: `tokenizer` (the FunnelTokenizer class, composing the rest), `files` (vocab.txt, tokenizer.json,
tokenizer_config.json, special_tokens_map.json), `vocabulary` (WordPiece training), `strategies` (padding and
truncation arguments -> backend settings), `encoding` (texts in, BatchEncoding out), `decoding` (ids back to
tokens/text), `pipeline` (the Rust pipeline), `specials` (the special tokens), `checks` (argument checks).
"""

from .encoding import BatchEncoding, TokenizerLengthWarning
from .tokenizer import FunnelTokenizer

__all__ = ["FunnelTokenizer", "BatchEncoding", "TokenizerLengthWarning"]
