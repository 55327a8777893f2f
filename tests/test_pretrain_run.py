"""Pretraining objectives and runs (`paddlefunnel pretrain run`): masking rules, ELECTRA labels, learning, exact
resume, 2-process data parallel, outputs that load in our heads and in transformers, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from model_utils import TINY_CONFIG
from paddlefunnel import FunnelConfig, FunnelForMaskedLM, FunnelForPreTraining, FunnelForSequenceClassification
from paddlefunnel.cli import build_parser, main
from paddlefunnel.cli.options import training_arguments
from paddlefunnel.cli.pretrain import objective_options
from paddlefunnel.pretraining import (
    ElectraPretrainingModel,
    MaskingSpec,
    ObjectiveOptions,
    PreparedCorpus,
    generator_config,
    mask_batch,
    prepare_corpus,
    pretrain,
)
from paddlefunnel.pretraining.masking import example_generators
from paddlefunnel.pretraining.models import sample_tokens
from paddlefunnel.pretraining.run import build_pretraining_model
from paddlefunnel.tokenizer import FunnelTokenizer
from paddlefunnel.pretraining.builtin import write_builtin_corpus
from paddlefunnel.training import Trainer, TrainingArguments, recipe_path

SEQ = 32
CLS, SEP, PAD, MASK, VOCAB = 2, 3, 0, 4, 100
SPEC = MaskingSpec(mask_id=MASK, special_ids=(CLS, SEP, PAD), vocab_size=VOCAB)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A prepared built-in corpus (seq 32, a vocabulary trained on it), a few hundred examples."""
    out = tmp_path_factory.mktemp("pretrain") / "data"
    prepare_corpus(["builtin"], None, SEQ, out, train_vocab=300, builtin_bytes=1 << 16, eval_examples=24,
                   show_progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """TINY_CONFIG with dropout off (runs compared across processes); the vocabulary comes from the tokenizer."""
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    config = FunnelConfig(**{**TINY_CONFIG, "d_model": 32, "n_head": 4, "d_inner": 48, "block_sizes": [1, 1]},
                          hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    path.write_text(config.to_json_string(), encoding="utf-8")
    return str(path)


def run_args(out, **overrides):
    values = dict(output_dir=str(out), learning_rate=2e-3, per_device_batch_size=8, max_steps=20, warmup_steps=2,
                  progress=False, seed=5, logging_steps=1, eval_steps=10)
    return TrainingArguments(**{**values, **overrides})


def train_losses(out):
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["event"] == "train"]


# ----------------------------------------------------------------------------------------------------- masking
def random_rows(n, seed=0):
    """<cls> A <sep> B <sep> rows, some padded at the end (attention mask 0 there)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (n, SEQ))
    ids[:, 0], ids[:, 12], ids[:, -1] = CLS, SEP, SEP
    mask = np.ones_like(ids)
    for row, length in enumerate(rng.integers(16, SEQ + 1, n)):
        ids[row, length - 1] = SEP
        ids[row, length:], mask[row, length:] = PAD, 0
    return ids, mask


def test_masking_rules_and_statistics():
    ids, mask = random_rows(2000)
    masked = mask_batch(ids, mask, SPEC, example_generators(1, range(len(ids)), epoch=0))
    target = masked.is_target.astype(bool)
    candidates = (mask == 1) & ~np.isin(ids, SPEC.special_ids)
    assert not target[~candidates].any()  # never <cls>, <sep>, <pad> or padding
    assert (masked.input_ids[~target] == ids[~target]).all() and (masked.original_ids == ids).all()
    expected = np.maximum(1, np.rint(candidates.sum(1) * 0.15))
    np.testing.assert_array_equal(target.sum(1), expected)  # round(15% of the candidates) per example
    became_mask = (masked.input_ids == MASK)[target].mean()
    kept = (masked.input_ids == ids)[target].mean()  # kept on purpose, or a random draw of the same token
    assert abs(became_mask - 0.8) < 0.02 and abs(kept - (0.1 + 0.1 / VOCAB)) < 0.015
    random_tokens = masked.input_ids[target & (masked.input_ids != MASK) & (masked.input_ids != ids)]
    assert abs(len(random_tokens) / target.sum() - 0.1 * (1 - 1 / VOCAB)) < 0.015
    assert len(np.unique(random_tokens)) > VOCAB // 2  # uniform over the vocabulary


def test_masks_depend_on_seed_pass_and_example_only():
    """Batching and process split do not change an example's mask; a new pass draws a new one."""
    ids, mask = random_rows(16)
    whole = mask_batch(ids, mask, SPEC, example_generators(3, range(16), epoch=2))
    part = mask_batch(ids[5:9], mask[5:9], SPEC, example_generators(3, range(5, 9), epoch=2))
    np.testing.assert_array_equal(whole.input_ids[5:9], part.input_ids)
    np.testing.assert_array_equal(whole.sample_uniform[5:9], part.sample_uniform)
    again = mask_batch(ids, mask, SPEC, example_generators(3, range(16), epoch=3))
    held_out = mask_batch(ids, mask, SPEC, example_generators(3, range(16), epoch=None))
    assert (again.is_target != whole.is_target).any() and (held_out.is_target != whole.is_target).any()


def test_masking_options_are_checked():
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(Exception, match="mask-prob"):
            MaskingSpec(MASK, (CLS,), VOCAB, mask_prob=bad)
    with pytest.raises(Exception, match="disc-weight"):
        ObjectiveOptions(disc_weight=0)


# ------------------------------------------------------------------------------------------------------ ELECTRA
def test_sampling_follows_the_generator_distribution():
    probabilities = np.array([0.2, 0.5, 0.3, 0.0], dtype=np.float32)
    logits = paddle.to_tensor(np.log(probabilities + 1e-30)[None].repeat(20000, 0))
    uniform = paddle.to_tensor(np.random.default_rng(0).random(20000).astype(np.float32))
    counts = np.bincount(sample_tokens(logits, uniform).numpy(), minlength=4) / 20000
    np.testing.assert_allclose(counts, probabilities, atol=0.015)


def electra_model(vocab=VOCAB, seed=0):
    paddle.seed(seed)
    config = FunnelConfig(**{**TINY_CONFIG, "vocab_size": vocab, "n_head": 4, "d_inner": 48})
    return ElectraPretrainingModel(FunnelForPreTraining(config), FunnelForMaskedLM(generator_config(config)))


def test_electra_labels_mark_sampled_tokens_that_differ_and_embeddings_are_shared():
    model = electra_model()
    seen = {}
    model.discriminator.register_forward_pre_hook(lambda layer, inputs: seen.update(ids=inputs[0].numpy()))
    ids, mask = random_rows(8)
    masked = mask_batch(ids, mask, SPEC, example_generators(0, range(8), epoch=0))
    out = model(**{k: paddle.to_tensor(v) for k, v in masked.arrays(True).items()},
                attention_mask=paddle.to_tensor(mask), token_type_ids=paddle.zeros_like(paddle.to_tensor(ids)))
    target = masked.is_target.astype(bool)
    np.testing.assert_array_equal(seen["ids"][~target], ids[~target])  # only masked positions are resampled
    replaced = (seen["ids"] != ids) & (mask == 1)
    assert 0 < replaced.sum() <= target.sum()  # an untrained generator rarely samples the original
    np.testing.assert_array_equal(out.n_replaced.numpy(), replaced.sum(1))
    np.testing.assert_array_equal(out.n_masked.numpy(), target.sum(1))
    gen, disc = model.generator.funnel.embeddings, model.discriminator.funnel.embeddings
    assert gen is disc and model.generator.lm_head.projection() is disc.word_embeddings.weight
    assert model.generator.config.d_model == model.discriminator.config.d_model
    assert model.generator.config.n_head == 1 and model.generator.config.d_inner == 12


def test_generator_larger_than_discriminator_warns(caplog):
    config = FunnelConfig(**TINY_CONFIG)
    with caplog.at_level("WARNING", logger="paddlefunnel"):
        ElectraPretrainingModel(FunnelForPreTraining(config), FunnelForMaskedLM(generator_config(config, 2.0)))
    assert "larger than the discriminator" in caplog.text


# ------------------------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def electra_run(data_dir, tiny_config, tmp_path_factory):
    """The CLI run the later tests inspect: ELECTRA, 20 steps of 8 examples, evaluation every 10."""
    out = tmp_path_factory.mktemp("runs") / "electra"
    code = main(["pretrain", "run", "--data", str(data_dir), "--model", tiny_config, "--init", "random",
                 "--out", str(out), "--max-steps", "20", "--batch-size", "8", "--learning-rate", "2e-3",
                 "--warmup-steps", "2", "--logging-steps", "1", "--eval-steps", "10", "--seed", "5",
                 "--no-progress"])
    assert code == 0
    return out


def test_electra_run_learns_and_logs(electra_run, capsys):
    losses = train_losses(electra_run)
    assert len(losses) == 20 and np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    records = [json.loads(line) for line in (electra_run / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    assert {"gen_loss", "gen_acc", "disc_loss", "disc_acc", "replaced_frac"} <= set(train[0])
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [10, 20]
    assert evals[-1]["disc_acc"] >= evals[-1]["disc_acc_all_original"] - 0.02
    summary = json.loads((electra_run / "eval_results.json").read_text())
    assert summary["steps"] == 20 and summary["final_eval"]["loss"] == evals[-1]["loss"]


def test_mlm_run_learns(data_dir, tiny_config, tmp_path):
    summary = pretrain(data_dir, run_args(tmp_path), tiny_config, objective="mlm", init="random")
    losses = train_losses(tmp_path)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert summary["final_eval"]["mlm_acc"] > 0 and (tmp_path / "mlm" / "vocab.txt").is_file()
    assert FunnelForMaskedLM.from_pretrained(tmp_path / "mlm").config.vocab_size == 300


@pytest.fixture(scope="module")
def small_data(data_dir, tmp_path_factory):
    """About 60 training examples (so a short run crosses a pass boundary), the big fixture's vocabulary."""
    root = tmp_path_factory.mktemp("small")
    lines = (data_dir.parent / "corpus.txt")
    write_builtin_corpus(lines, 1 << 16)
    (root / "small.txt").write_text("\n".join(lines.read_text().splitlines()[:36]) + "\n", encoding="utf-8")
    tokenizer = FunnelTokenizer.from_pretrained(data_dir / "tokenizer")
    prepare_corpus([root / "small.txt"], tokenizer, SEQ, root / "data", eval_examples=0, show_progress=False)
    return root / "data"


def test_resume_is_bit_exact(small_data, data_dir, tiny_config, tmp_path, monkeypatch):
    """Killed after step 7 (checkpoint at step 6, in a later pass over the data than the first), resumed from
    disk: the weights equal an uninterrupted run's, masks and generator samples included."""
    per_pass = PreparedCorpus.open(small_data).manifest["splits"]["train"] // 8
    assert 2 <= per_pass < 6  # the checkpoint lies in a later pass than the first
    small = dict(max_steps=8, save_steps=3, eval_steps=0)
    common = dict(tokenizer=str(data_dir / "tokenizer"), init="random")
    pretrain(small_data, run_args(tmp_path / "a", **small), tiny_config, **common)
    real = Trainer._optimizer_step

    def killed_after_step_7(self, *args, **kwargs):
        if self.state.global_step == 7:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_optimizer_step", killed_after_step_7)
    with pytest.raises(KeyboardInterrupt):
        pretrain(small_data, run_args(tmp_path / "b", **small), tiny_config, **common)
    monkeypatch.setattr(Trainer, "_optimizer_step", real)
    pretrain(small_data, run_args(tmp_path / "b", resume=True, **small), tiny_config, **common)
    for name, cls in (("discriminator", FunnelForPreTraining), ("generator", FunnelForMaskedLM)):
        straight = cls.from_pretrained(tmp_path / "a" / name).state_dict()
        resumed = cls.from_pretrained(tmp_path / "b" / name).state_dict()
        for key in straight:
            np.testing.assert_array_equal(straight[key].numpy(), resumed[key].numpy(), err_msg=f"{name} {key}")


def test_two_processes_equal_one(data_dir, tiny_config, tmp_path):
    """`paddle.distributed.launch`, 2 CPU processes x batch 4 = one process x batch 8: same weights (up to the
    order of summation) and the same held-out metrics; each process masks only its own rows, and every example's
    mask is its own, so both runs see the same masks and generator draws."""
    tests_dir = os.path.dirname(__file__)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node=2", "--log_dir",
           str(tmp_path / "logs"), os.path.join(tests_dir, "dist_pretrain_worker.py"), str(data_dir), tiny_config,
           str(out), "4"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in (tmp_path / "logs").glob("*"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + logs
    single = tmp_path / "single"
    args = TrainingArguments(output_dir=str(single), learning_rate=2e-3, per_device_batch_size=8, max_steps=6,
                             warmup_steps=2, progress=False, seed=5, logging_steps=1, eval_steps=3, adam_epsilon=1e-3)
    summary = pretrain(data_dir, args, tiny_config, init="random")
    start = electra_start_weights(data_dir, tiny_config)
    for name, cls in (("discriminator", FunnelForPreTraining), ("generator", FunnelForMaskedLM)):
        ours = {k: v.numpy() for k, v in cls.from_pretrained(single / name).state_dict().items()}
        theirs = {k: v.numpy() for k, v in cls.from_pretrained(out / name).state_dict().items()}
        assert max(np.abs(ours[k] - start[name][k]).max() for k in ours) > 5e-3  # training moved them
        for key in ours:
            np.testing.assert_allclose(theirs[key], ours[key], atol=2e-6, rtol=0, err_msg=f"{name} {key}")
    parallel = json.loads((out / "eval_results.json").read_text())["final_eval"]
    for key, value in summary["final_eval"].items():
        assert parallel[key] == pytest.approx(value, abs=1e-5), key


def electra_start_weights(data_dir, config):
    """The weights a run with seed 5 starts from (same construction as `pretrain`)."""
    tokenizer = FunnelTokenizer.from_pretrained(data_dir / "tokenizer")
    model = build_pretraining_model(config, tokenizer, ObjectiveOptions(), 5, init="random")
    return {"discriminator": {k: v.numpy() for k, v in model.discriminator.state_dict().items()},
            "generator": {k: v.numpy() for k, v in model.generator.state_dict().items()}}


# ---------------------------------------------------------------------------------------------------- outputs
def test_outputs_load_in_our_heads_and_in_transformers(electra_run, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    classifier = FunnelForSequenceClassification.from_pretrained(electra_run / "discriminator", num_labels=2)
    assert classifier.config.num_labels == 2 and (electra_run / "discriminator" / "vocab.txt").is_file()
    tokenizer = FunnelTokenizer.from_pretrained(electra_run / "discriminator")
    batch = tokenizer(["the capital of avaria is kesh .", "a trader went west"], ["it is far", "and back"],
                      padding="max_length", max_length=SEQ, return_tensors="np")
    feed = {k: np.asarray(batch[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    for name, ours_cls, theirs_cls in (("discriminator", FunnelForPreTraining, transformers.FunnelForPreTraining),
                                       ("generator", FunnelForMaskedLM, transformers.FunnelForMaskedLM)):
        assert main(["convert", str(electra_run / name), str(tmp_path / name), "--to", "hf"]) == 0
        ours = ours_cls.from_pretrained(electra_run / name)(**{k: paddle.to_tensor(v) for k, v in feed.items()})
        theirs = theirs_cls.from_pretrained(tmp_path / name).eval()
        with torch.no_grad():
            reference = theirs(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
        np.testing.assert_allclose(ours.logits.numpy(), reference, atol=1e-5, rtol=0, err_msg=name)
    capsys.readouterr()


def test_continued_pretraining_starts_from_the_discriminator(electra_run, data_dir, tmp_path, caplog):
    """--model DIR (no --init): the discriminator loads its weights, the generator starts fresh (with a note)."""
    source = FunnelForPreTraining.from_pretrained(electra_run / "discriminator").state_dict()
    with caplog.at_level("INFO", logger="paddlefunnel"):
        pretrain(data_dir, run_args(tmp_path, max_steps=1, learning_rate=1e-12, eval_steps=0),
                 str(electra_run / "discriminator"))
    assert "the generator" in caplog.text and "random weights" in caplog.text
    continued = FunnelForPreTraining.from_pretrained(tmp_path / "discriminator").state_dict()
    for key, value in source.items():
        np.testing.assert_allclose(continued[key].numpy(), value.numpy(), atol=1e-6, err_msg=key)


def test_recipe_task_options_under_flags():
    """`--recipe pretrain --recipe-section S`: the section's `_task_options` apply, a flag given wins."""
    argv = ["pretrain", "run", "--data", "d", "--model", "m", "--out", "o", "--recipe", "pretrain",
            "--recipe-section", "electra-base-scale"]
    recipe = json.loads(recipe_path("pretrain").read_text())["electra-base-scale"]["_task_options"]

    def parsed(extra=()):
        args = build_parser().parse_args(argv + list(extra))
        training_arguments(args)  # fills the unset options from the recipe section's _task_options
        return objective_options(args)

    assert parsed() == recipe
    assert parsed(["--disc-weight", "7", "--objective", "mlm"]) == {**recipe, "disc_weight": 7.0, "objective": "mlm"}


# ------------------------------------------------------------------------------------------------- bad input
def run_cli(capsys, data_dir, config, out, *extra):
    code = main(["pretrain", "run", "--data", str(data_dir), "--model", config, "--init", "random", "--out",
                 str(out), "--max-steps", "1", "--no-progress", *extra])
    return code, capsys.readouterr().err.strip().splitlines()


def test_bad_input_is_one_line(data_dir, tiny_config, tmp_path, capsys):
    bad = {"--disc-weight": ("0", "--disc-weight must be positive"),
           "--mask-prob": ("1.5", "--mask-prob must be between 0 and 1")}
    for flag, (value, message) in bad.items():
        code, err = run_cli(capsys, data_dir, tiny_config, tmp_path / "x", flag, value)
        assert code == 2 and len(err) == 1 and message in err[0], err
    code, err = run_cli(capsys, data_dir, tiny_config, tmp_path / "x", "--max-seq-length", "64")
    assert code == 2 and "prepared with max_seq_length 32" in err[-1]
    # a tokenizer the data was not prepared with, and one without <mask>
    vocab = (data_dir / "tokenizer" / "vocab.txt").read_text().splitlines()
    for name, lines in (("other", vocab[:-1]), ("nomask", [t for t in vocab if t != "<mask>"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "vocab.txt").write_text("\n".join(lines) + "\n")
        code, err = run_cli(capsys, data_dir, tiny_config, tmp_path / "x", "--tokenizer", str(tmp_path / name))
        expected = "prepared with another tokenizer" if name == "other" else "<mask>"
        assert code == 2 and expected in err[-1], err
    assert not (tmp_path / "x").exists()  # refused before writing anything
