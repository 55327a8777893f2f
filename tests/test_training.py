"""Training engine: schedule, learning, exact resume, best checkpoint, early stopping, divergence."""

import json

import numpy as np
import paddle
import pytest

from model_utils import tiny
from paddlefunnel import FunnelConfig, FunnelForSequenceClassification
from paddlefunnel.errors import NonFiniteLossError
from paddlefunnel.training import (
    CHECKPOINT_DIR,
    ArrayDataset,
    ResumableBatchSampler,
    Trainer,
    TrainingArguments,
    lr_factor,
    no_decay_names,
)


def parity_features(n: int, seed: int, seq_len: int = 10) -> ArrayDataset:
    """Label = whether token 5 appears in the sequence: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(6, 64, (n, seq_len))
    labels = rng.integers(0, 2, n)
    positions = rng.integers(1, seq_len, n)
    ids[labels == 1, positions[labels == 1]] = 5
    ids[:, 0] = 2
    return ArrayDataset({"input_ids": ids.astype("int64"), "attention_mask": np.ones_like(ids),
                         "token_type_ids": np.zeros_like(ids), "labels": labels.astype("int64")})


def accuracy(predictions, data):
    return {"acc": float((predictions["logits"].argmax(-1) == data.arrays["labels"]).mean())}


def make_model(seed=0, **overrides):
    paddle.seed(seed)
    return FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=2, **overrides)))


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_lr_schedule_shapes():
    assert lr_factor(0, 10, 100, "linear") == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, "linear") == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, "linear") == pytest.approx(0.5)
    assert lr_factor(100, 10, 100, "linear") == 0.0
    assert lr_factor(55, 10, 100, "cosine") == pytest.approx(0.5)
    assert lr_factor(80, 0, 100, "constant") == 1.0


def test_no_decay_for_bias_and_layer_norm():
    model = make_model()
    skip = no_decay_names(model)
    names = {p.name: n for n, p in model.named_parameters()}
    skipped = {names[s] for s in skip}
    assert "classifier.linear_hidden.bias" in skipped and "funnel.embeddings.layer_norm.weight" in skipped
    assert "funnel.encoder.blocks.0.0.attention.r_w_bias" in skipped
    assert "classifier.linear_hidden.weight" not in skipped and "funnel.embeddings.word_embeddings.weight" not in skipped


def test_sampler_shards_global_batches_and_resumes_mid_epoch():
    full = list(ResumableBatchSampler(10, 4, seed=1, epoch=2))
    assert sorted(i for b in full for i in b) == list(range(10)) and [len(b) for b in full] == [4, 4, 2]
    assert list(ResumableBatchSampler(10, 4, seed=1, epoch=2, start_batch=1)) == full[1:]
    halves = [list(ResumableBatchSampler(10, 4, seed=1, epoch=2, rank=r, world_size=2)) for r in (0, 1)]
    assert [sorted(a + b) for a, b in zip(*halves)] == [sorted(b) for b in full]
    assert full != list(ResumableBatchSampler(10, 4, seed=1, epoch=3))


def test_training_learns_and_keeps_best_checkpoint(tmp_path):
    train, dev = parity_features(256, 0), parity_features(64, 1)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=3e-3, per_device_batch_size=16, num_epochs=6,
                             warmup_ratio=0.1, logging_steps=4, progress=False, seed=3)
    model = make_model(hidden_dropout=0.0, attention_dropout=0.0)
    trainer = Trainer(model, args, train, dev, compute_metrics=lambda p: accuracy(p, dev), main_metric="acc")
    result = trainer.train()
    assert result.global_step == 6 * 16
    assert result.best_metric >= 0.9
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    evals = [r for r in log if r["event"] == "eval"]
    assert len(evals) == 6 and max(r["acc"] for r in evals) == result.best_metric
    best = FunnelForSequenceClassification.from_pretrained(tmp_path / "best")
    assert accuracy(Trainer(best, args).predict(dev), dev)["acc"] == pytest.approx(result.best_metric)
    assert sorted(p.name for p in (tmp_path / CHECKPOINT_DIR).iterdir()) == [
        "config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"]


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    """Run A trains 12 steps straight; run B stops after 5 (checkpointing), a new process-like trainer
    resumes from disk and finishes. Dropout is on: its masks must be reproduced too."""
    train = parity_features(96, 0)
    common = dict(learning_rate=2e-3, per_device_batch_size=8, max_steps=12, warmup_steps=3, progress=False,
                  gradient_accumulation_steps=2, seed=5, logging_steps=1)
    straight = make_model(seed=11)
    Trainer(straight, TrainingArguments(output_dir=str(tmp_path / "a"), **common), train).train()

    interrupted = make_model(seed=11)
    doomed = Trainer(interrupted, TrainingArguments(output_dir=str(tmp_path / "b"), save_steps=5, **common), train)
    real_step = doomed._optimizer_step

    def killed_after_step_7(*a, **kw):
        if doomed.state.global_step == 7:  # checkpoint of step 5 is on disk; steps 6-7 are lost
            raise KeyboardInterrupt
        return real_step(*a, **kw)

    doomed._optimizer_step = killed_after_step_7
    with pytest.raises(KeyboardInterrupt):
        doomed.train()
    # A fresh model object (other init) must be fully overwritten by the checkpoint.
    resumed = make_model(seed=99)
    args = TrainingArguments(output_dir=str(tmp_path / "b"), resume=True, **common)
    Trainer(resumed, args, train).train()
    a, b = weights(straight), weights(resumed)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    records = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    # Steps 6-7 of the killed run are dropped from the log (they were redone); one marker says where it resumed.
    assert [(r["event"], r["step"]) for r in records if r["event"] == "resume"] == [("resume", 5)]
    assert [r["step"] for r in records if r["event"] == "train"] == list(range(1, 13))


@pytest.mark.parametrize("eval_steps, evaluated_at", [(4, [4, 8, 10]), (5, [5, 10]), (0, [3, 6, 9, 10])])
def test_evaluation_schedule_steps_or_epochs(tmp_path, eval_steps, evaluated_at):
    """eval_steps > 0 means transformers' "steps" strategy: every eval_steps steps and at the last, never at the
    epoch ends in between (here an epoch is 3 steps); 0 means each epoch end. A checkpoint follows every
    evaluation (save_steps=0), the last step included, and is written once per step."""
    train, dev = parity_features(48, 0), parity_features(16, 1)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, per_device_batch_size=16, max_steps=10,
                             eval_steps=eval_steps, progress=False, logging_steps=100)
    trainer = Trainer(make_model(), args, train, dev, compute_metrics=lambda p: accuracy(p, dev), main_metric="acc")
    saved, real_save = [], trainer._save_checkpoint
    trainer._save_checkpoint = lambda: (saved.append(trainer.state.global_step), real_save())
    assert trainer.steps_per_epoch() == 3
    trainer.train()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "eval"] == evaluated_at
    assert saved == evaluated_at


def test_early_stopping(tmp_path):
    train, dev = parity_features(64, 0), parity_features(32, 1)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-9, per_device_batch_size=16, num_epochs=20,
                             eval_steps=1, early_stopping_patience=2, progress=False)
    result = Trainer(make_model(), args, train, dev, compute_metrics=lambda p: accuracy(p, dev),
                     main_metric="acc").train()
    assert result.stopped_early and result.global_step == 3 and result.best_step == 1


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    train = parity_features(64, 0)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, per_device_batch_size=16, max_steps=8,
                             save_steps=2, progress=False)
    model = make_model()
    trainer = Trainer(model, args, train)
    original = trainer._forward_loss

    def poisoned(batch):
        loss = original(batch)
        return loss * float("nan") if trainer.state.global_step == 4 else loss

    trainer._forward_loss = poisoned
    with pytest.raises(NonFiniteLossError, match="at step 5"):
        trainer.train()
    state = json.loads((tmp_path / CHECKPOINT_DIR / "trainer_state.json").read_text())
    assert state["trainer"]["global_step"] == 4


def test_amp_on_cpu_says_fp32(tmp_path, caplog):
    Trainer(make_model(), TrainingArguments(output_dir=str(tmp_path), amp="fp16", progress=False))
    assert "running fp32" in caplog.text


def test_bad_arguments_and_recipe(tmp_path):
    with pytest.raises(ValueError, match="learning_rate=-1"):
        TrainingArguments(learning_rate=-1)
    with pytest.raises(ValueError, match="lr_schedule='step'"):
        TrainingArguments(lr_schedule="step")
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"qnli": {"learning_rate": 1e-5, "per_device_batch_size": 24, "num_epochs": 4},
                                  "bad": {"learning_rat": 1}}))
    args = TrainingArguments.from_recipe(recipe, "qnli", output_dir="x")
    assert (args.learning_rate, args.per_device_batch_size, args.num_epochs, args.output_dir) == (1e-5, 24, 4, "x")
    with pytest.raises(ValueError, match="unknown training arguments \\['learning_rat'\\]"):
        TrainingArguments.from_recipe(recipe, "bad")
    with pytest.raises(ValueError, match="no section 'mrpc'"):
        TrainingArguments.from_recipe(recipe, "mrpc")
    with pytest.raises(ValueError, match="split is empty"):
        ArrayDataset({"input_ids": np.zeros((0, 3))})


@pytest.mark.parametrize("attention_type", ["relative_shift", "factorized"])
def test_two_process_data_parallel_equals_single_process(tmp_path, attention_type):
    """`paddle.distributed.launch` with 2 CPU processes (gloo): per-device batch 4 x 2 = global batch 8.
    The weights and the gathered dev predictions must equal one process training on batch 8."""
    import os
    import subprocess
    import sys

    tests_dir = os.path.dirname(__file__)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}  # set: launch expects GPUs
    env["PYTHONPATH"] = tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node=2", "--log_dir",
           str(tmp_path / "launch_logs"), os.path.join(tests_dir, "dist_train_worker.py"), str(out), attention_type]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in (tmp_path / "launch_logs").glob("*"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + logs

    train, dev = parity_features(64, 0), parity_features(20, 1)
    single = make_model(seed=11, hidden_dropout=0.0, attention_dropout=0.0, attention_type=attention_type)
    args = TrainingArguments(output_dir=str(tmp_path / "single"), learning_rate=2e-3, per_device_batch_size=8,
                             max_steps=6, warmup_steps=2, progress=False, seed=5, eval_steps=3, adam_epsilon=1e-3)
    trainer = Trainer(single, args, train, dev, compute_metrics=lambda p: accuracy(p, dev), main_metric="acc")
    trainer.train()
    parallel = FunnelForSequenceClassification.from_pretrained(out / CHECKPOINT_DIR)
    ours, theirs = weights(single), weights(parallel)
    start = weights(make_model(seed=11, hidden_dropout=0.0, attention_dropout=0.0, attention_type=attention_type))
    # Equal up to summation order (mean of two half-batch means vs one mean). Adam divides by sqrt(v) + eps,
    # which turns rounding-level gradients (~1e-7, e.g. the analytically zero k_head.bias ones) into lr-sized
    # steps, so both runs use eps=1e-3; training itself moves the weights by ~1e-2.
    assert max(np.abs(ours[k] - start[k]).max() for k in ours) > 5e-3
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], atol=2e-6, rtol=0, err_msg=key)
    np.testing.assert_allclose(np.load(out / "dev_logits.npy"), trainer.predict(dev)["logits"], atol=1e-5, rtol=0)
    assert not (out / "log.jsonl").read_text().count('"rank"')  # one writer: rank 0


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_code_path_runs_when_forced(tmp_path, amp):
    """The GPU-only AMP branch (autocast, and GradScaler for fp16), forced on CPU to check its wiring; the real
    mixed-precision numerics need a GPU and are not exercised here."""
    train = parity_features(32, 0)
    trainer = Trainer(make_model(), TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_batch_size=8,
                                                      progress=False, logging_steps=1), train)
    trainer.amp = amp
    result = trainer.train()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert result.global_step == 3 and all(np.isfinite(losses))
