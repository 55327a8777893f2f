"""A pretraining run (`paddlefunnel pretrain run`): a prepared corpus (`pretrain prepare`), dynamic masking, the
MLM or ELECTRA objective, trained by the same Trainer as fine-tuning (AdamW + warmup/decay, accumulation,
clipping, AMP on GPU, checkpoints, exact `--resume`, `paddle.distributed.launch` data parallel).

The run directory holds the Trainer's files (`checkpoint-last/` and `best/` are pretraining checkpoints: every
weight of the objective in one file, for resuming) and, written when the run ends, ordinary model directories
with the tokenizer: ELECTRA `discriminator/` (FunnelForPreTraining, the model to fine-tune) and `generator/`
(FunnelForMaskedLM); MLM `mlm/` (FunnelForMaskedLM). They hold the final weights (pretraining selects no "best"
step; `best/` keeps the lowest held-out loss for reference).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from ..config import FunnelConfig
from ..errors import InputError, MissingFileError
from ..modeling import FunnelForMaskedLM, FunnelForPreTraining
from ..registry import PRETRAINING_OUTPUT_DIRS, VOCABULARY_FILES
from ..tokenizer import FunnelTokenizer
from ..training import ArrayDataset, Trainer, TrainingArguments, init_distributed
from ..training.checkpointing import save_model
from ..training.rundir import check_run_directory
from ..tasks.common import PRETRAINED, build_model, describe_model_argument, resolve_tokenizer, write_results
from .masking import DEFAULT_MASK_PROB, MaskingSpec, check_mask_prob, example_generators, mask_batch
from .models import (
    DEFAULT_DISC_WEIGHT,
    DEFAULT_GENERATOR_SIZE,
    ELECTRA,
    MLM,
    OBJECTIVES,
    STAT_KEYS,
    ElectraPretrainingModel,
    MaskedLMPretrainingModel,
    evaluation_metrics,
    generator_config,
)
from .prepare import prepare_corpus
from .shards import TOKENIZER_DIR, PreparedCorpus

logger = logging.getLogger("paddlefunnel")

(DISCRIMINATOR_DIR, GENERATOR_DIR), (MLM_DIR,) = PRETRAINING_OUTPUT_DIRS[ELECTRA], PRETRAINING_OUTPUT_DIRS[MLM]
# The model directories a run writes at its end, and the one to fine-tune afterwards (first).
OUTPUT_DIRS = PRETRAINING_OUTPUT_DIRS  # objective -> the model directories a run writes (registry.py)
OBJECTIVE_FLAGS = ("objective", "mask_prob", "generator_size", "generator_config", "disc_weight")


@dataclass(frozen=True)
class ObjectiveOptions:
    """The objective's settings (the optimizer's are in TrainingArguments); checked when made."""

    objective: str = ELECTRA
    mask_prob: float = DEFAULT_MASK_PROB
    generator_size: float = DEFAULT_GENERATOR_SIZE  # ELECTRA: fraction of the discriminator's layer width
    generator_config: str | None = None  # ELECTRA: a config .json for the generator instead of generator_size
    disc_weight: float = DEFAULT_DISC_WEIGHT  # ELECTRA: weight of the discriminator's loss

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        check_mask_prob(self.mask_prob)
        if not self.disc_weight > 0:
            raise InputError(f"--disc-weight must be positive, got {self.disc_weight}")
        if not self.generator_size > 0:
            raise InputError(f"--generator-size must be positive, got {self.generator_size}")
        if self.generator_config is not None and not Path(self.generator_config).is_file():
            raise MissingFileError(f"--generator-config {self.generator_config}: no such file")


# ------------------------------------------------------------------------------------------------- data
def _numpy(value) -> np.ndarray:
    return value.numpy() if isinstance(value, paddle.Tensor) else np.asarray(value)


class MaskedSplit:
    """A corpus split whose batches are masked afresh in every pass (the Trainer calls `set_epoch`).

    Same `__len__` / `batch(indices)` shape as ArrayDataset; reads only the rows asked for, so each process of a
    data-parallel run reads only its share."""

    def __init__(self, split, spec: MaskingSpec, seed: int, with_samples: bool) -> None:
        self.split, self.spec, self.seed, self.with_samples = split, spec, seed, with_samples
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.split)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batch(self, indices: Sequence[int]) -> dict[str, paddle.Tensor]:
        return {k: paddle.to_tensor(v) for k, v in masked_arrays(self.split, indices, self.spec, self.seed,
                                                                   self.epoch, self.with_samples).items()}


def masked_arrays(split, indices: Sequence[int], spec: MaskingSpec, seed: int, epoch: int | None,
                  with_samples: bool) -> dict[str, np.ndarray]:
    """The rows `indices` of `split`, masked with each example's own generator (epoch None: the held-out draw)."""
    rows = {k: _numpy(v) for k, v in split.batch(list(indices)).items()}
    masked = mask_batch(rows["input_ids"], rows["attention_mask"], spec, example_generators(seed, indices, epoch))
    return {"attention_mask": rows["attention_mask"], "token_type_ids": rows["token_type_ids"],
            **masked.arrays(with_samples)}


def held_out_data(split, spec: MaskingSpec, seed: int, with_samples: bool) -> ArrayDataset | None:
    """The eval split with one fixed masking draw (so evaluations at different steps compare), in memory."""
    if split is None or len(split) == 0:
        return None
    return ArrayDataset(masked_arrays(split, range(len(split)), spec, seed, None, with_samples))


# ----------------------------------------------------------------------------------------- model and tokenizer
def pretraining_tokenizer(model: str, data_dir: str | os.PathLike, tokenizer: str | None, init: str,
                          revision: str | None) -> FunnelTokenizer:
    """--tokenizer, else the model's own vocabulary, else the one `pretrain prepare` saved in the data directory."""
    try:
        return resolve_tokenizer(model, tokenizer, init=init, revision=revision)
    except MissingFileError:
        if tokenizer:
            raise
        for place in (Path(data_dir) / TOKENIZER_DIR, Path(data_dir)):
            if any((place / name).is_file() for name in VOCABULARY_FILES):
                return FunnelTokenizer.from_pretrained(place)
        raise MissingFileError(f"no vocabulary for --model {model!r} and none saved in {data_dir}: pass "
                               "--tokenizer DIR (the one the data was prepared with)") from None


def build_pretraining_model(model: str, tokenizer: FunnelTokenizer, options: ObjectiveOptions, seed: int,
                            init: str = PRETRAINED, revision: str | None = None,
                            ignore_mismatched_sizes: bool = False):
    """The objective's layer: MLM around a FunnelForMaskedLM, or ELECTRA's discriminator (pretrained or random,
    from `model`) with a randomly initialised generator sharing its embeddings."""
    if options.objective == MLM:
        masked_lm = build_model(FunnelForMaskedLM, model, tokenizer, ignore_mismatched_sizes, seed, init, revision)
        _check_vocabulary(masked_lm.config, tokenizer)
        return MaskedLMPretrainingModel(masked_lm)
    discriminator = build_model(FunnelForPreTraining, model, tokenizer, ignore_mismatched_sizes, seed, init, revision)
    _check_vocabulary(discriminator.config, tokenizer)
    if options.generator_config:
        config = FunnelConfig.from_json_file(options.generator_config)
        config.update({"vocab_size": discriminator.config.vocab_size})
    else:
        config = generator_config(discriminator.config, options.generator_size)
    if init == PRETRAINED:
        logger.info("continued pretraining: the discriminator starts from %s; the generator (%s) starts from random "
                    "weights, sharing the discriminator's embeddings", model,
                    options.generator_config or f"{options.generator_size:g} of the discriminator's layer width")
    paddle.seed(seed + 1)  # the generator's initialisation, independent of whether the discriminator was random
    return ElectraPretrainingModel(discriminator, FunnelForMaskedLM(config), options.disc_weight)


def _check_vocabulary(config: FunnelConfig, tokenizer: FunnelTokenizer) -> None:
    if len(tokenizer) > config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
                         f"{config.vocab_size}: use the model's own tokenizer (or --init random)")


def output_models(wrapper) -> dict[str, Any]:
    """The shareable models of a trained objective, by output directory name."""
    if isinstance(wrapper, ElectraPretrainingModel):
        return {DISCRIMINATOR_DIR: wrapper.discriminator, GENERATOR_DIR: wrapper.generator}
    return {MLM_DIR: wrapper.model}


# ---------------------------------------------------------------------------------------------------- run
def pretrain(data_dir: str | os.PathLike, args: TrainingArguments, model: str, *, objective: str = ELECTRA,
             mask_prob: float = DEFAULT_MASK_PROB, generator_size: float = DEFAULT_GENERATOR_SIZE,
             generator_config: str | None = None, disc_weight: float = DEFAULT_DISC_WEIGHT, init: str = PRETRAINED,
             tokenizer: str | None = None, revision: str | None = None, max_seq_length: int | None = None,
             ignore_mismatched_sizes: bool = False) -> dict[str, Any]:
    """Pretrain `model` (a directory / hub name to continue from, or with init="random" a preset / config) on the
    prepared corpus in `data_dir` with MLM or ELECTRA; return the run's summary (also `<out>/eval_results.json`).

    `max_seq_length`, when given, must be the data's (checked with the corpus); by default the data decides."""
    options = ObjectiveOptions(objective, mask_prob, generator_size, generator_config, disc_weight)
    describe_model_argument(model, init)  # a pretrained name without weights fails before any work
    if init_distributed()[0] == 0:  # other processes would see what rank 0 starts writing and refuse
        check_run_directory(args, (data_dir, model, tokenizer, generator_config))
    corpus = PreparedCorpus.open(data_dir)
    tok = pretraining_tokenizer(model, data_dir, tokenizer, init, revision)
    spec = MaskingSpec.from_tokenizer(tok, options.mask_prob)
    corpus.check_compatible(tok, max_seq_length or int(corpus.manifest["max_seq_length"]))
    wrapper = build_pretraining_model(model, tok, options, args.seed, init, revision, ignore_mismatched_sizes)
    with_samples = objective == ELECTRA
    train = MaskedSplit(corpus.split("train"), spec, args.seed, with_samples)
    held_out = held_out_data(_optional_split(corpus, "eval"), spec, args.seed, with_samples)

    def compute_metrics(stats: dict[str, np.ndarray]) -> dict[str, float]:
        return evaluation_metrics(stats, objective, disc_weight)

    trainer = Trainer(wrapper, args, train, held_out, compute_metrics if held_out else None, main_metric="loss",
                      greater_is_better=False, prediction_keys=STAT_KEYS[objective],
                      save_extra=tok.save_pretrained)
    started = time.time()
    result = trainer.train()
    summary = {"objective": objective, "steps": result.global_step, "train_examples": len(train),
               "eval_examples": len(held_out) if held_out else 0, "best_step": result.best_step,
               "best_eval_loss": result.best_metric, "final_eval": result.final_metrics,
               "seconds": round(time.time() - started, 1), "options": asdict(options),
               "model_dir": str(Path(args.output_dir) / OUTPUT_DIRS[objective][0]),
               "outputs": [str(Path(args.output_dir) / name) for name in OUTPUT_DIRS[objective]]}
    if trainer.is_main:
        for name, layer in output_models(wrapper).items():
            save_model(Path(args.output_dir) / name, layer, tok.save_pretrained)
        write_results(args.output_dir, summary)
    return summary


def _optional_split(corpus: PreparedCorpus, name: str):
    splits = corpus.manifest.get("splits", {})
    return corpus.split(name) if int(splits.get(name, 0) or 0) > 0 else None


# --------------------------------------------------------------------------------------------------- demo
DEMO_CONFIG = dict(d_model=64, n_head=4, d_head=16, d_inner=128, block_sizes=[1, 1, 1], num_decoder_layers=1)


def demo_pretraining(out_dir: str | os.PathLike, *, steps: int = 80, objective: str = ELECTRA,
                     corpus_bytes: int = 1 << 19, vocab_size: int = 1000, max_seq_length: int = 64,
                     seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """A short end-to-end pretraining (about a minute on 2 CPU cores): the built-in corpus, prepared with a
    freshly trained vocabulary, then a tiny Funnel pretrained from scratch. Writes `<out_dir>/data/` and
    `<out_dir>/run/`; returns the run's summary plus the preparation's and the whole demo's seconds."""
    out = Path(out_dir)
    started = time.time()
    manifest = prepare_corpus(["builtin"], None, max_seq_length, out / "data", seed=seed, train_vocab=vocab_size,
                              builtin_bytes=corpus_bytes, show_progress=False, overwrite=True)
    prepared = time.time()
    config_file = out / "tiny_config.json"
    config_file.write_text(FunnelConfig(vocab_size=vocab_size, **DEMO_CONFIG).to_json_string(), encoding="utf-8")
    args = TrainingArguments(output_dir=str(out / "run"), learning_rate=2e-3, per_device_batch_size=16,
                             max_steps=steps, warmup_steps=max(1, steps // 10), logging_steps=max(1, steps // 10),
                             eval_steps=max(1, steps // 2), eval_batch_size=64, seed=seed, progress=progress,
                             overwrite=True)
    summary = pretrain(out / "data", args, str(config_file), objective=objective, init="random")
    return {**summary, "prepared_examples": manifest["splits"], "prepare_seconds": round(prepared - started, 1),
            "total_seconds": round(time.time() - started, 1)}
