"""`make demo`: the whole workflow on built-in data, no downloads. Each step prints what it did."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

# A scaled-down "funnel-transformer/small": same block layout idea, sizes a CPU handles in seconds.
DEMO_CONFIG = dict(
    vocab_size=2000, block_sizes=[2, 2, 2], d_model=128, n_head=4, d_head=32, d_inner=512, num_decoder_layers=2,
)


def _step(title: str) -> None:
    print(f"\n== {title}")


def demo_model_round_trip(out_dir: Path) -> None:
    import paddle

    from . import FunnelConfig, FunnelModel

    _step("model: build, run, save, reload")
    paddle.seed(0)
    config = FunnelConfig(**DEMO_CONFIG)
    model = FunnelModel(config)
    model.eval()
    rng = np.random.default_rng(0)
    batch, seq_len = 4, 32
    lengths = np.array([32, 28, 20, 12])
    input_ids = rng.integers(7, config.vocab_size, (batch, seq_len))
    attention_mask = (np.arange(seq_len)[None] < lengths[:, None]).astype("int64")
    token_type_ids = np.where(np.arange(seq_len)[None] < lengths[:, None] // 2, 0, 1)
    token_type_ids[:, 0] = 2  # <cls>
    input_ids[attention_mask == 0] = 0
    inputs = {
        "input_ids": paddle.to_tensor(input_ids),
        "attention_mask": paddle.to_tensor(attention_mask),
        "token_type_ids": paddle.to_tensor(token_type_ids),
    }
    start = time.perf_counter()
    out = model(**inputs, output_hidden_states=True)
    elapsed = time.perf_counter() - start
    lengths_per_state = [h.shape[1] for h in out.hidden_states]
    print(f"config: blocks {config.block_sizes}, d_model {config.d_model}, {model.num_parameters():,} parameters")
    print(f"forward {batch}x{seq_len} (padded sentence pairs) in {elapsed * 1000:.0f} ms; "
          f"sequence length after each layer: {lengths_per_state} (the funnel), decoder restores {seq_len}")
    target = out_dir / "model"
    model.save_pretrained(target)
    reloaded = FunnelModel.from_pretrained(target)
    same = np.array_equal(reloaded(**inputs).last_hidden_state.numpy(), out.last_hidden_state.numpy())
    print(f"saved to {target} ({', '.join(sorted(p.name for p in target.iterdir()))}); "
          f"reloaded output identical: {same}")
    if not same:
        raise RuntimeError("reloaded model gives different outputs")


def run_demo(out: str | Path = "demo_output") -> int:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    demo_model_round_trip(out_dir)
    print(f"\ndemo finished; outputs in {out_dir}/")
    return 0
