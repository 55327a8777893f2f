"""Dynamic masking for the pretraining objectives (MLM and ELECTRA), drawn afresh every time an example is seen.

Which tokens are masked follows the authors' TensorFlow pretraining input pipeline (laiguokun/Funnel-Transformer,
tensorflow/input_func_builder.py, `sample_strategy="single_token"` with `discrepancy_correction`):
- `<cls>`, `<sep>` and `<pad>` (and every position outside the attention mask) are never chosen;
- a fixed number of the remaining tokens of each example is chosen uniformly without replacement. The authors
  pass that number as `num_predict` (one value for every example); here it is `mask_prob` times the example's
  candidate tokens, rounded, and at least one (BERT's rule, so short last-of-document examples are not
  over-masked);
- of the chosen positions, `keep_prob` (their `leak_ratio`, 0.1) keep the original token, `random_prob` (their
  `rand_ratio`, 0.1) get a token drawn uniformly from the whole vocabulary, and the rest get `<mask>`.

The random numbers of an example come from its own generator, seeded by (run seed, pass, example index). So the
masks do not depend on how examples are grouped into batches or processes: a run resumed from a checkpoint, and a
run on two processes, see exactly the masks an uninterrupted single-process run sees. Each pass over the data
(epoch) draws new masks; the held-out split uses one fixed draw, so its metrics are comparable between steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

DEFAULT_MASK_PROB = 0.15
KEEP_PROB = 0.1  # authors' leak_ratio
RANDOM_PROB = 0.1  # authors' rand_ratio
_TRAIN_STREAM, _EVAL_STREAM = 0, 1  # first word of every seed: training passes and the held-out split never share


@dataclass(frozen=True)
class MaskingSpec:
    """What the masking needs to know about the vocabulary, and how much to mask."""

    mask_id: int
    special_ids: tuple[int, ...]  # never masked: <cls>, <sep>, <pad>
    vocab_size: int
    mask_prob: float = DEFAULT_MASK_PROB
    keep_prob: float = KEEP_PROB
    random_prob: float = RANDOM_PROB

    def __post_init__(self) -> None:
        check_mask_prob(self.mask_prob)
        if self.keep_prob < 0 or self.random_prob < 0 or self.keep_prob + self.random_prob > 1:
            raise InputError(f"keep_prob {self.keep_prob} and random_prob {self.random_prob} must be >= 0 and sum "
                             "to at most 1")

    @classmethod
    def from_tokenizer(cls, tokenizer, mask_prob: float = DEFAULT_MASK_PROB, vocab_size: int | None = None
                       ) -> MaskingSpec:
        """The tokenizer's special ids; a tokenizer without `<mask>` cannot be used for masked pretraining."""
        if tokenizer.mask_token_id is None:
            raise InputError(f"the tokenizer has no {tokenizer.mask_token!r} token in its vocabulary, which masked "
                             "pretraining needs; add it to vocab.txt or use a Funnel vocabulary")
        specials = tuple(i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
                         if i is not None)
        return cls(int(tokenizer.mask_token_id), specials, int(vocab_size or len(tokenizer)), mask_prob)


def check_mask_prob(mask_prob: float) -> None:
    if not 0 < mask_prob < 1:
        raise InputError(f"--mask-prob must be between 0 and 1 (exclusive), got {mask_prob}")


def example_generators(seed: int, indices: Iterable[int], epoch: int | None) -> list[np.random.Generator]:
    """One generator per example: (seed, training pass `epoch`, index), or (seed, held-out, index) for None."""
    stream = [_TRAIN_STREAM, epoch] if epoch is not None else [_EVAL_STREAM]
    return [np.random.default_rng([seed, *stream, int(i)]) for i in indices]


def candidate_positions(input_ids: np.ndarray, attention_mask: np.ndarray, spec: MaskingSpec) -> np.ndarray:
    """Positions that may be masked: real tokens that are not <cls>/<sep>/<pad>."""
    return (attention_mask == 1) & ~np.isin(input_ids, spec.special_ids)


def masked_counts(candidates: np.ndarray, mask_prob: float) -> np.ndarray:
    """Tokens to mask per example: round(mask_prob x candidates), at least one where there is a candidate."""
    available = candidates.sum(axis=1)
    wanted = np.maximum(1, np.rint(available * mask_prob).astype(np.int64))
    return np.minimum(wanted, available)


@dataclass
class MaskedBatch:
    """Numpy arrays of one batch after masking (all [batch, seq_len])."""

    input_ids: np.ndarray  # corrupted: <mask> / random / kept at the chosen positions
    original_ids: np.ndarray
    is_target: np.ndarray  # int64 0/1: the positions the generator (MLM head) predicts
    sample_uniform: np.ndarray  # float32 in [0, 1): the ELECTRA generator's draw at each position

    def arrays(self, with_samples: bool) -> dict[str, np.ndarray]:
        out = {"input_ids": self.input_ids, "original_ids": self.original_ids, "is_target": self.is_target}
        if with_samples:
            out["sample_uniform"] = self.sample_uniform
        return out


def mask_batch(input_ids: np.ndarray, attention_mask: np.ndarray, spec: MaskingSpec,
               generators: Sequence[np.random.Generator]) -> MaskedBatch:
    """Mask each row of `input_ids` with its own generator (see the module docstring for the rules)."""
    if len(generators) != len(input_ids):
        raise ValueError(f"{len(generators)} generators for {len(input_ids)} examples")
    rows, length = input_ids.shape
    draws = np.stack([g.random((3, length)) for g in generators]) if rows else np.zeros((0, 3, length))
    random_ids = np.stack([g.integers(0, spec.vocab_size, length) for g in generators]) if rows else input_ids
    choose, action, sample = draws[:, 0], draws[:, 1], draws[:, 2]
    candidates = candidate_positions(input_ids, attention_mask, spec)
    # the k smallest draws among the candidates (non-candidates sort last): k chosen uniformly without replacement
    rank = np.argsort(np.argsort(np.where(candidates, choose, 2.0), axis=1, kind="stable"), axis=1, kind="stable")
    is_target = candidates & (rank < masked_counts(candidates, spec.mask_prob)[:, None])
    to_random = is_target & (action >= 1 - spec.random_prob)
    to_mask = is_target & (action >= spec.keep_prob) & ~to_random
    corrupted = np.where(to_mask, spec.mask_id, np.where(to_random, random_ids, input_ids))
    return MaskedBatch(corrupted.astype(np.int64), input_ids.astype(np.int64), is_target.astype(np.int64),
                       sample.astype(np.float32))
