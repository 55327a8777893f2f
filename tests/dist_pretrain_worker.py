"""Run under `python -m paddle.distributed.launch --nproc_per_node=2`: a short ELECTRA run, per-device batch 4."""

import sys

import paddlefunnel  # noqa: F401  (CPU math settings before paddle)
from paddlefunnel.pretraining import pretrain
from paddlefunnel.training import TrainingArguments

data, config, out, per_device = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
args = TrainingArguments(output_dir=out, learning_rate=2e-3, per_device_batch_size=per_device, max_steps=6,
                         warmup_steps=2, progress=False, seed=5, logging_steps=1, eval_steps=3, adam_epsilon=1e-3)
pretrain(data, args, config, init="random", objective="electra")
