"""Training engine: layer-wise learning-rate decay (effective rates read back from real updates), activation
recomputation (gradients equal to the plain run, through the model and through the CLI), recipes with sources and
task options."""

import argparse
import json
import re

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from model_utils import tiny
from paddlefunnel import FunnelConfig
from paddlefunnel.cli import build_parser, main
from paddlefunnel.cli.options import add_model_options, add_training_options, training_arguments
from paddlefunnel.errors import InputError
from paddlefunnel.modeling import encoder as encoder_module
from paddlefunnel.modeling.heads import (
    FunnelForMaskedLM,
    FunnelForQuestionAnswering,
    FunnelForSequenceClassification,
    FunnelForTokenClassification,
)
from paddlefunnel.training import TrainingArguments, recipe_path
from paddlefunnel.training.arguments import builtin_recipes, recipe_task_options
from paddlefunnel.training.optimizer import build_optimizer, no_decay_names

BUILTIN_RECIPES = ("glue", "squad", "race", "classification")


def _args(tmp_path, **overrides) -> TrainingArguments:
    values = dict(output_dir=str(tmp_path), learning_rate=1e-3, warmup_steps=0, warmup_ratio=0.0,
                  lr_schedule="constant", weight_decay=0.0, max_grad_norm=0.0, max_steps=5)
    return TrainingArguments(**{**values, **overrides})


def _expected_multiplier(name: str, decay: float, config: FunnelConfig) -> float:
    """The rule written out from parameter names (independent of training/optimizer.py)."""
    depth = sum(config.block_sizes)
    if re.search(r"(^|\.)embeddings\.", name):
        return decay**depth
    found = re.search(r"(^|\.)encoder\.blocks\.(\d+)\.(\d+)\.", name)
    if found:
        block, index = int(found.group(2)), int(found.group(3))
        layer = sum(config.block_sizes[:block]) + index + 1
        return decay ** (depth - layer)
    return 1.0  # decoder layers, heads


def _one_step_changes(model: nn.Layer, args: TrainingArguments, gradient: float) -> dict[str, np.ndarray]:
    """Each parameter's change in one optimizer step where every gradient entry equals `gradient`."""
    optimizer, _ = build_optimizer(model, args, total_steps=5)
    before = {name: param.numpy().copy() for name, param in model.named_parameters()}
    loss = sum((param * gradient).sum() for param in model.parameters())
    loss.backward()
    optimizer.step()
    return {name: param.numpy() - before[name] for name, param in model.named_parameters()}


def _assert_change(change: np.ndarray, expected, before: np.ndarray, name: str) -> None:
    """`change` equals `expected` up to float32 rounding of the parameter (2 ulps) plus 1e-5 relative."""
    error = np.abs(change.astype(np.float64) - expected)
    allowed = 2 * np.spacing(np.abs(before) + np.abs(change)) + 1e-5 * np.abs(expected)
    assert (error <= allowed).all(), (name, float(error.max()), float(np.max(np.abs(expected))))


@pytest.mark.parametrize("head, extra", [
    (FunnelForSequenceClassification, {"num_labels": 3, "block_repeats": [1, 2, 2]}),  # no decoder, repeats
    (FunnelForQuestionAnswering, {}),  # FunnelModel with a decoder
    (FunnelForTokenClassification, {"num_labels": 5, "block_sizes": [1, 2, 1, 1], "num_decoder_layers": 2}),
])
def test_layer_decay_effective_learning_rates(tmp_path, head, extra):
    """First Adam step with gradient 1 everywhere moves each entry by exactly its learning rate (m / sqrt(v) = 1)."""
    paddle.seed(0)
    model = head(FunnelConfig(**tiny(**extra)))
    before = {name: param.numpy().copy() for name, param in model.named_parameters()}
    decay, lr = 0.5, 1e-2
    changes = _one_step_changes(model, _args(tmp_path, learning_rate=lr, layer_decay=decay), gradient=1.0)
    seen = set()
    for name, change in changes.items():
        multiplier = _expected_multiplier(name, decay, model.config)
        seen.add(round(multiplier, 6))
        _assert_change(change, -lr * multiplier, before[name], name)
    depth = sum(model.config.block_sizes)
    assert {round(decay**k, 6) for k in range(depth + 1)} <= seen  # every encoder depth and the embeddings


def test_layer_decay_follows_the_warmup_schedule(tmp_path):
    """Step 2 of a 4-step warmup runs at 2/4 of the peak rate, times each parameter's multiplier (Adam's step
    with a constant gradient is exactly the rate at every step)."""
    paddle.seed(0)
    model = FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=2)))
    args = _args(tmp_path, learning_rate=1e-2, layer_decay=0.5, warmup_steps=4, lr_schedule="linear", max_steps=8)
    optimizer, scheduler = build_optimizer(model, args, total_steps=8)
    for _ in range(2):
        before = {name: param.numpy().copy() for name, param in model.named_parameters()}
        sum(param.sum() for param in model.parameters()).backward()
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
    for name, param in model.named_parameters():
        expected = -1e-2 * (2 / 4) * _expected_multiplier(name, 0.5, model.config)
        _assert_change(param.numpy() - before[name], expected, before[name], name)


def test_layer_decay_scales_weight_decay_and_keeps_no_decay_rules(tmp_path):
    """With zero gradients only AdamW's decoupled weight decay moves parameters: lr_i * wd * p for decayed ones,
    nothing for biases and LayerNorm."""
    paddle.seed(0)
    model = FunnelForQuestionAnswering(FunnelConfig(**tiny()))
    skip = no_decay_names(model)
    names = {param.name: name for name, param in model.named_parameters()}
    before = {name: param.numpy().copy() for name, param in model.named_parameters()}
    decay, lr, wd = 0.5, 1e-2, 0.1
    changes = _one_step_changes(model, _args(tmp_path, learning_rate=lr, layer_decay=decay, weight_decay=wd), 0.0)
    for param in model.parameters():
        name = names[param.name]
        expected = 0.0 if param.name in skip else -lr * _expected_multiplier(name, decay, model.config) * wd
        _assert_change(changes[name], expected * before[name].astype(np.float64), before[name], name)
    assert any(changes[names[p]].any() for p in names if p not in skip)


def test_tied_lm_head_follows_the_embeddings(tmp_path):
    paddle.seed(0)
    model = FunnelForMaskedLM(FunnelConfig(**tiny()))
    before = {name: param.numpy().copy() for name, param in model.named_parameters()}
    changes = _one_step_changes(model, _args(tmp_path, layer_decay=0.5, learning_rate=1e-2), gradient=1.0)
    embedding = [name for name in changes if name.endswith("word_embeddings.weight")]
    assert len(embedding) == 1  # the LM head's weight is this parameter
    _assert_change(changes[embedding[0]], -1e-2 * 0.5 ** sum(model.config.block_sizes), before[embedding[0]], "tied")


def _todays_optimizer(model: nn.Layer, args: TrainingArguments, scheduler) -> paddle.optimizer.AdamW:
    """The optimizer exactly as training/optimizer.py built it before layer-wise decay existed."""
    skip = no_decay_names(model)
    return paddle.optimizer.AdamW(
        learning_rate=scheduler, parameters=model.parameters(), beta1=args.adam_beta1, beta2=args.adam_beta2,
        epsilon=args.adam_epsilon, weight_decay=args.weight_decay, apply_decay_param_fun=lambda n: n not in skip,
        grad_clip=nn.ClipGradByGlobalNorm(args.max_grad_norm))


def test_layer_decay_one_is_todays_optimizer(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-2, warmup_steps=1, max_steps=4,
                             weight_decay=0.1, max_grad_norm=0.5, layer_decay=1.0)
    rng = np.random.default_rng(0)
    ids = paddle.to_tensor(rng.integers(5, 60, (4, 9)))
    labels = paddle.to_tensor(rng.integers(0, 3, (4,)))
    finals = []
    for ours in (True, False):
        paddle.seed(0)
        model = FunnelForSequenceClassification(FunnelConfig(**tiny(num_labels=3, hidden_dropout=0.0)))
        optimizer, scheduler = build_optimizer(model, args, total_steps=4)
        if not ours:
            optimizer = _todays_optimizer(model, args, scheduler)
        for _ in range(4):
            model(ids, labels=labels).loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            scheduler.step()
        finals.append({name: param.numpy() for name, param in model.named_parameters()})
    for name, value in finals[0].items():
        np.testing.assert_array_equal(value, finals[1][name], err_msg=name)


def test_layer_decay_is_validated():
    with pytest.raises(InputError, match="layer_decay"):
        TrainingArguments(layer_decay=0.0)
    with pytest.raises(InputError, match="layer_decay"):
        TrainingArguments(layer_decay=1.5)


# ------------------------------------------------------------------------------------------------ recompute
RECOMPUTE_OPTIONS = {
    "default": {},
    "factorized": {"attention_type": "factorized"},
    "repeats_no_pool_q_only": {"block_repeats": [1, 2, 2], "pool_q_only": False},
    "no_separate_cls": {"separate_cls": False, "truncate_seq": False},
}


def _loss_and_gradients(head, options: dict, dropout: float, recompute: bool, calls: list):
    paddle.seed(0)
    config = FunnelConfig(**tiny(**options), hidden_dropout=dropout, attention_dropout=dropout,
                          activation_dropout=dropout)
    model = head(config)
    if recompute:
        model.gradient_checkpointing_enable()
    model.train()
    rng = np.random.default_rng(1)
    ids = paddle.to_tensor(rng.integers(5, 60, (2, 11)))
    token_types = paddle.to_tensor(np.repeat((np.arange(11) > 5).astype("int64")[None], 2, 0))
    mask = paddle.to_tensor(np.array([[1] * 11, [1] * 8 + [0] * 3]))
    paddle.seed(123)  # the dropout masks
    before = len(calls)
    output = model(ids, attention_mask=mask, token_type_ids=token_types)
    logits = output.logits if hasattr(output, "logits") else output.start_logits + 2 * output.end_logits
    loss = (logits * paddle.to_tensor(rng.normal(size=logits.shape).astype("float32"))).sum()
    loss.backward()
    return float(loss), {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}, \
        len(calls) - before


@pytest.fixture
def recompute_calls(monkeypatch):
    """Counts the layers run through Paddle's recompute (proves the switch is on, not just harmless)."""
    calls = []
    real = encoder_module.recompute

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(encoder_module, "recompute", counting)
    return calls


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("option", list(RECOMPUTE_OPTIONS))
@pytest.mark.parametrize("head", [FunnelForSequenceClassification, FunnelForQuestionAnswering])
def test_recompute_gradients_equal_plain(head, option, dropout, recompute_calls):
    options = RECOMPUTE_OPTIONS[option]
    plain_loss, plain, plain_calls = _loss_and_gradients(head, options, dropout, False, recompute_calls)
    loss, recomputed, calls = _loss_and_gradients(head, options, dropout, True, recompute_calls)
    config = FunnelConfig(**tiny(**options))
    layers = sum(s * r for s, r in zip(config.block_sizes, config.block_repeats))
    if head is FunnelForQuestionAnswering:
        layers += config.num_decoder_layers
    assert plain_calls == 0 and calls == layers
    assert loss == pytest.approx(plain_loss, rel=1e-6)
    assert recomputed.keys() == plain.keys() and len(plain) == len(list(head(config).parameters()))
    for name, gradient in plain.items():
        np.testing.assert_allclose(recomputed[name], gradient, rtol=1e-5, atol=1e-6, err_msg=name)


def test_recompute_only_when_training_with_gradients(recompute_calls):
    paddle.seed(0)
    model = FunnelForQuestionAnswering(FunnelConfig(**tiny()))
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    ids = paddle.to_tensor(np.arange(5, 16)[None])
    model.eval()
    model(ids)
    model.train()
    with paddle.no_grad():
        model(ids)
    assert recompute_calls == []
    model(ids)
    assert len(recompute_calls) == sum(model.config.block_sizes) + model.config.num_decoder_layers
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


# ------------------------------------------------------------------------------------------------- the CLI
TINY_MODEL = {"model_type": "funnel", "vocab_size": 300, "block_sizes": [1, 1, 1], "d_model": 32, "n_head": 2,
              "d_head": 16, "d_inner": 64, "num_decoder_layers": 1, "hidden_dropout": 0.2}


@pytest.fixture
def classify_files(tmp_path):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "great", "poor", "nice", "sad"]
    rows = ["text,label"]
    for _ in range(40):
        chosen = rng.choice(words, size=6)
        rows.append(f"{' '.join(chosen)},{int(sum(w in ('good', 'fine', 'great', 'nice') for w in chosen) > 3)}")
    train = tmp_path / "train.csv"
    train.write_text("\n".join(rows) + "\n")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))
    return train, config


def _train_classify(train, config, out, *extra) -> list[float]:
    assert main(["train", "classify", "--train-file", str(train), "--text-columns", "text", "--label-column", "label",
                 "--model", str(config), "--init", "random", "--train-vocab", "50", "--max-seq-length", "16",
                 "--out", str(out), "--batch-size", "8", "--max-steps", "2", "--logging-steps", "1",
                 "--learning-rate", "1e-3", "--no-progress", "--seed", "0", *extra]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [record["loss"] for record in log if record["event"] == "train"]


def test_cli_recompute_gives_the_same_losses(classify_files, tmp_path, recompute_calls, capsys):
    train, config = classify_files
    plain = _train_classify(train, config, tmp_path / "plain")
    assert recompute_calls == []
    recomputed = _train_classify(train, config, tmp_path / "recompute", "--recompute")
    assert len(recompute_calls) >= 2 * 3  # two steps of three encoder layers
    assert len(plain) == 2 and recomputed == pytest.approx(plain, rel=1e-6)


def _parse(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    add_training_options(parser)
    return parser.parse_args(["--model", "m", "--out", "o", *argv])


def test_cli_flags_layer_decay_and_recompute_keep_recipe_values_when_unset(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"s": {"_source": "test", "layer_decay": 0.8, "recompute": True}}))
    args = training_arguments(_parse("--recipe", str(recipe), "--recipe-section", "s"))
    assert (args.layer_decay, args.recompute) == (0.8, True)
    args = training_arguments(_parse("--recipe", str(recipe), "--recipe-section", "s", "--layer-decay", "0.6"))
    assert args.layer_decay == 0.6
    args = training_arguments(_parse("--layer-decay", "0.75", "--recompute"))
    assert (args.layer_decay, args.recompute) == (0.75, True)
    assert training_arguments(_parse()).recompute is False


def test_recipe_task_options_fill_unset_command_options():
    parsed = _parse("--recipe", "classification", "--recipe-section", "imdb")
    args = training_arguments(parsed)
    assert parsed.max_seq_length == 512 and args.per_device_batch_size == 32 and args.max_steps == 4000
    parsed = _parse("--recipe", "classification", "--recipe-section", "imdb", "--max-seq-length", "64")
    training_arguments(parsed)
    assert parsed.max_seq_length == 64  # a flag beats the recipe
    with pytest.raises(InputError, match="max_qa_length"):  # written for the multiple-choice command
        training_arguments(_parse("--recipe", "race", "--recipe-section", "race"))
    squad = build_parser().parse_args(["train", "squad", "--train-file", "x", "--model", "m", "--out", "o",
                                       "--recipe", "squad", "--recipe-section", "v2-authors-tpu", "--doc-stride", "100"])
    assert training_arguments(squad).layer_decay == 0.75
    assert (squad.max_seq_length, squad.max_query_length, squad.doc_stride, squad.max_answer_length) == (512, 64, 100, 64)


def test_recipe_task_options_are_checked(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"s": {"_task_options": {"max seq": [1]}}, "t": {"_task_options": 5}}))
    for section in ("s", "t"):
        with pytest.raises(InputError, match="_task_options"):
            recipe_task_options(recipe, section)


# ------------------------------------------------------------------------------------------------- recipes
def _sections(name: str) -> dict:
    data = json.loads(recipe_path(name).read_text())
    return {key: value for key, value in data.items() if not key.startswith("_")}


@pytest.mark.parametrize("name", BUILTIN_RECIPES)
def test_every_recipe_section_loads_and_cites_a_source(name):
    for section, values in _sections(name).items():
        assert isinstance(values.get("_source"), str) and len(values["_source"]) > 20, (name, section)
        TrainingArguments.from_recipe(recipe_path(name), section)
        recipe_task_options(recipe_path(name), section)


def test_every_builtin_recipe_section_has_a_source():
    """The house rule for every recipe file shipped (including ones other parts of the project add)."""
    assert set(BUILTIN_RECIPES) <= set(builtin_recipes())
    for name in builtin_recipes():
        for section, values in _sections(name).items():
            assert values.get("_source"), (name, section)
            TrainingArguments.from_recipe(recipe_path(name), section)


def test_authors_recipes_hold_the_published_settings():
    """Spot checks of the values the sources state (a typo here would train with the wrong settings)."""
    glue = {s: TrainingArguments.from_recipe(recipe_path("glue"), s) for s in ("rte", "mnli", "qqp", "qnli")}
    assert (glue["mnli"].per_device_batch_size, glue["mnli"].learning_rate, glue["mnli"].num_epochs) == (64, 1e-5, 3)
    assert (glue["qqp"].per_device_batch_size, glue["qqp"].num_epochs) == (64, 5)
    assert (glue["qnli"].per_device_batch_size, glue["qnli"].learning_rate) == (32, 2e-5)
    assert recipe_task_options(recipe_path("glue"), "rte") == {"max_seq_length": 128}
    squad = TrainingArguments.from_recipe(recipe_path("squad"), "v2-authors-tpu")
    assert (squad.layer_decay, squad.per_device_batch_size, squad.max_steps, squad.warmup_steps) == (0.75, 48, 8000, 1000)
    race = TrainingArguments.from_recipe(recipe_path("race"), "race")
    assert (race.per_device_batch_size, race.learning_rate, race.max_steps, race.warmup_steps) == (16, 2e-5, 24000, 2400)
    assert recipe_task_options(recipe_path("race"), "race") == {"max_seq_length": 512, "max_qa_length": 128}
    imdb = TrainingArguments.from_recipe(recipe_path("classification"), "imdb")
    assert (imdb.per_device_batch_size, imdb.max_steps, imdb.warmup_steps) == (32, 4000, 400)
    assert "tpu_squad.sh" in _sections("squad")["v2-authors-tpu"]["_source"]
