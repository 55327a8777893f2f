"""Run under `python -m paddle.distributed.launch --nproc_per_node=2`: trains a few steps, rank 0 saves."""

import sys

import numpy as np

import paddlefunnel  # noqa: F401  (CPU math settings before paddle)
from test_training import make_model, parity_features, accuracy
from paddlefunnel.training import Trainer, TrainingArguments

out, attention_type = sys.argv[1], sys.argv[2]
train, dev = parity_features(64, 0), parity_features(20, 1)
model = make_model(seed=11, hidden_dropout=0.0, attention_dropout=0.0, attention_type=attention_type)
args = TrainingArguments(output_dir=out, learning_rate=2e-3, per_device_batch_size=4, max_steps=6, warmup_steps=2,
                         progress=False, seed=5, logging_steps=1, eval_steps=3, adam_epsilon=1e-3)
trainer = Trainer(model, args, train, dev, compute_metrics=lambda p: accuracy(p, dev), main_metric="acc")
trainer.train()
predictions = trainer.predict(dev)["logits"]
if trainer.rank == 0:
    np.save(f"{out}/dev_logits.npy", predictions)
