"""Features in memory and the order they are fed in.

The data order of epoch e is a permutation seeded by (seed, e) alone, so a run resumed mid-epoch sees exactly
the batches an uninterrupted run would have seen, without saving any generator state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import paddle

from ..errors import InputError


class ArrayDataset(paddle.io.Dataset):
    """Pre-tokenised features: equal-length numpy arrays keyed by model argument name."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"feature arrays differ in length: {lengths}")
        if not lengths or next(iter(lengths.values())) == 0:
            raise InputError("no features: the data split is empty")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[index] for k, v in self.arrays.items()}

    def batch(self, indices: Sequence[int]) -> dict[str, paddle.Tensor]:
        return {k: paddle.to_tensor(v[np.asarray(indices)]) for k, v in self.arrays.items()}


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


class ResumableBatchSampler(paddle.io.BatchSampler):
    """Global batches in a seeded per-epoch order, this rank's share of each, from a given batch onward."""

    def __init__(self, num_examples: int, global_batch_size: int, seed: int, epoch: int = 0, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if global_batch_size % world_size:
            raise ValueError(f"global batch {global_batch_size} is not divisible by {world_size} processes")
        self.num_examples, self.global_batch_size = num_examples, global_batch_size
        self.seed, self.epoch, self.start_batch, self.rank, self.world_size = seed, epoch, start_batch, rank, world_size

    def __len__(self) -> int:
        return max(0, math.ceil(self.num_examples / self.global_batch_size) - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.num_examples, self.seed, self.epoch)
        for start in range(self.start_batch * self.global_batch_size, self.num_examples, self.global_batch_size):
            global_batch = order[start : start + self.global_batch_size]
            yield [int(i) for i in np.array_split(global_batch, self.world_size)[self.rank]]
