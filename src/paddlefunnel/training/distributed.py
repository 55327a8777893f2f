"""Data parallelism over processes started by `python -m paddle.distributed.launch`: who am I, how many are we."""

from __future__ import annotations

import os

import paddle.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); a plain single process is (0, 1)."""
    if dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by `paddle.distributed.launch`; no-op otherwise."""
    if int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    return world()
