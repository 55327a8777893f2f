"""`paddlefunnel demo` (`make demo`): the whole workflow on built-in data, no downloads. Each step prints what it did.

text -> vocabulary -> tokenizer -> model round trip -> a short ELECTRA pretraining -> GLUE-format, SQuAD v2.0-format,
RACE-format and CoNLL-format tasks, each trained from scratch, evaluated and predicted -> exported for Paddle
Inference and queried with raw text. Everything is written under one output directory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import paddle

from ..config import FunnelConfig
from ..data import (SYNTHETIC_GLUE_TASK, demo_corpus, read_race, write_synthetic_conll, write_synthetic_glue,
                    write_synthetic_race, write_synthetic_squad)
from ..deploy import Predictor
from ..modeling import FunnelModel
from ..pretraining.run import demo_pretraining
from ..tasks.classification import evaluate_glue, predict_glue, train_glue
from ..tasks.multiple_choice import evaluate_multiple_choice, predict_multiple_choice, train_race
from ..tasks.squad import SquadSettings, predict_squad, train_squad
from ..tasks.token_classification import evaluate_ner, predict_ner, train_ner
from ..tokenizer import FunnelTokenizer
from ..training import TrainingArguments
from .deploy import export_and_report
from .options import add_command

# A scaled-down Funnel: three blocks like the released models, sizes a CPU trains in about a minute.
DEMO_MODEL = {"model_type": "funnel", "vocab_size": 1000, "block_sizes": [1, 1, 1], "d_model": 64, "n_head": 4,
              "d_head": 16, "d_inner": 128, "num_decoder_layers": 1}
# Question answering needs a little more capacity to learn when a question has no answer.
DEMO_QA_MODEL = {**DEMO_MODEL, "block_sizes": [2, 1, 1], "d_model": 96, "d_head": 24, "d_inner": 192}
NO_DROPOUT = {"hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}
# Multiple choice reads the encoder only (no decoder); without dropout a model this small learns to match options
# against the article several times faster (measured: 60% after 2 epochs with the default 0.1).
DEMO_MC_MODEL = {**DEMO_MODEL, "num_decoder_layers": 0, **NO_DROPOUT}
# The classifier, trained from scratch for 7 epochs, learns the task whatever the seed without dropout (dev accuracy
# 1.000 / 0.998 / 0.990 for seeds 0-2 on one thread, 0.995 for seed 0 in `make demo`); with the default 0.1 the
# result was a draw (0.780 / 0.905 / 0.995 / 0.980 for seeds 0-3; measured 2026-12-08).
DEMO_GLUE_MODEL = {**DEMO_MODEL, **NO_DROPOUT}
DEMO_NER_MAX_SEQ_LENGTH = 32  # with the demo vocabulary a synthetic sentence is at most 29 pieces: one window
DEMO_VOCAB_SIZE = 256  # the built-in corpus supports about 260 WordPiece tokens


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", _run, "run the built-in end-to-end demo (no downloads)", all_cores=True)
    p.add_argument("--out", default="demo_output", help="directory for everything the demo writes")


def _run(args: argparse.Namespace) -> int:
    return run_demo(args.out)


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def demo_vocabulary(out_dir: Path):
    _step("vocabulary: train WordPiece on the built-in text")
    corpus = demo_corpus()
    tokenizer = FunnelTokenizer.train_from_iterator(corpus, DEMO_VOCAB_SIZE, show_progress=False)
    tokenizer.save_pretrained(out_dir / "tokenizer")
    sample = "what is the capital of kaldor ?"
    print(f"{len(corpus)} sentences -> {len(tokenizer)} tokens, saved to {out_dir / 'tokenizer'}")
    print(f"{sample!r} -> {tokenizer.tokenize(sample)}")
    return tokenizer


def demo_model_round_trip(out_dir: Path, tokenizer=None) -> None:
    _step("model: build, run, save, reload")
    paddle.seed(0)
    config = FunnelConfig(**{**DEMO_MODEL, "vocab_size": len(tokenizer) if tokenizer else DEMO_MODEL["vocab_size"]})
    model = FunnelModel(config)
    model.eval()
    if tokenizer is not None:
        questions = ["what is the capital of kaldor ?", "what is the national animal of cressia ?"]
        answers = ["the capital of kaldor is druma .", "marten is the national animal of cressia ."]
        batch = tokenizer(questions, answers, padding="max_length", max_length=32, return_tensors="np")
        inputs = {k: paddle.to_tensor(batch[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    else:
        ids = np.random.default_rng(0).integers(7, config.vocab_size, (2, 32))
        inputs = {"input_ids": paddle.to_tensor(ids)}
    start = time.perf_counter()
    out = model(**inputs, output_hidden_states=True)
    elapsed = time.perf_counter() - start
    lengths = [h.shape[1] for h in out.hidden_states]
    print(f"config: blocks {config.block_sizes}, d_model {config.d_model}, {model.num_parameters():,} parameters")
    print(f"forward of {list(inputs['input_ids'].shape)} in {elapsed * 1000:.0f} ms; sequence length after each "
          f"layer: {lengths} (the funnel; the decoder restores the input length)")
    target = out_dir / "model"
    model.save_pretrained(target)
    reloaded = FunnelModel.from_pretrained(target)
    same = np.array_equal(reloaded(**inputs).last_hidden_state.numpy(), out.last_hidden_state.numpy())
    print(f"saved to {target}; reloaded output identical: {same}")
    if not same:
        raise RuntimeError("reloaded model gives different outputs")


def demo_pretrain(out_dir: Path) -> dict:
    """A short ELECTRA pretraining from raw text (the built-in corpus): prepare, then pretrain a tiny Funnel."""
    _step("pretraining: prepare the built-in corpus, then a short ELECTRA run from scratch")
    summary = demo_pretraining(out_dir / "pretraining")
    final, examples = summary["final_eval"], summary["prepared_examples"]
    print(f"prepared {examples['train']} training + {examples['eval']} held-out examples in {summary['prepare_seconds']:.0f} s; pretrained "
          f"{summary['steps']} steps in {summary['seconds']:.0f} s; held out: discriminator accuracy "
          f"{final['disc_acc']:.3f} (all-original {final['disc_acc_all_original']:.3f}), generator masked accuracy "
          f"{final['gen_acc']:.3f}; models: {', '.join(summary['outputs'])}")
    return summary


def _tiny_run(out_dir: Path, name: str, model: dict, learning_rate: float, batch_size: int, epochs: float,
              seed: int = 0) -> tuple[Path, TrainingArguments]:
    """The config file and training arguments of one demo task trained from scratch (a re-run starts over)."""
    config_file = out_dir / f"tiny_{name}_config.json"
    config_file.write_text(json.dumps(model, indent=2))
    args = TrainingArguments(output_dir=str(out_dir / f"{name}_run"), learning_rate=learning_rate,
                             per_device_batch_size=batch_size, num_epochs=epochs, warmup_ratio=0.1, logging_steps=25,
                             seed=seed, overwrite=True)
    return config_file, args


def demo_glue(out_dir: Path, tokenizer_dir: Path, epochs: float = 7, n_train: int = 4000) -> dict:
    _step(f"GLUE format: a synthetic {SYNTHETIC_GLUE_TASK}-layout task, tiny Funnel trained from scratch")
    data_dir = out_dir / "glue_data"
    write_synthetic_glue(data_dir, n_train=n_train, n_dev=400, n_test=400, seed=0)
    config_file, args = _tiny_run(out_dir, "glue", DEMO_GLUE_MODEL, 2e-3, 32, epochs)
    run_dir = Path(args.output_dir)
    start = time.perf_counter()
    summary = train_glue(SYNTHETIC_GLUE_TASK, str(data_dir), args, str(config_file), tokenizer=str(tokenizer_dir),
                         max_seq_length=32, init="random")
    print(f"trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s; best dev accuracy "
          f"{summary['best_acc']:.4f} at step {summary['best_step']} (log: {run_dir / 'log.jsonl'})")
    metrics = evaluate_glue(SYNTHETIC_GLUE_TASK, str(data_dir), str(run_dir / "best"))
    print(f"evaluate (best checkpoint, dev): {json.dumps(metrics)}")
    written = predict_glue(SYNTHETIC_GLUE_TASK, str(data_dir), str(run_dir / "best"), str(out_dir / "glue_submission"))
    print(f"test predictions in the GLUE server format: {', '.join(str(p) for p in written)}")
    return metrics


def demo_squad(out_dir: Path, tokenizer_dir: Path, epochs: float = 3, n_articles: int = 1500,
               seed: int = 0) -> dict:
    _step("SQuAD v2.0 format: synthetic facts and questions (some unanswerable), trained from scratch")
    train_file = write_synthetic_squad(out_dir / "squad_data" / "train-v2.0.json", n_articles, seed=0)
    dev_file = write_synthetic_squad(out_dir / "squad_data" / "dev-v2.0.json", 60, seed=1)
    config_file, args = _tiny_run(out_dir, "squad", DEMO_QA_MODEL, 2e-3, 32, epochs, seed)
    run_dir = Path(args.output_dir)
    settings = SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=16, version_2_with_negative=True)
    start = time.perf_counter()
    summary = train_squad(str(train_file), str(dev_file), args, str(config_file), settings,
                          tokenizer=str(tokenizer_dir), init="random")
    print(f"trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s; best dev F1 "
          f"{summary['best_f1']:.2f} at step {summary['best_step']}")
    result = predict_squad(str(dev_file), str(run_dir / "best"), str(out_dir / "squad_predictions"))
    metrics = result["metrics"]
    print(f"predict + official v2.0 evaluation: exact {metrics['exact']:.2f}, F1 {metrics['f1']:.2f} (answerable F1 "
          f"{metrics['HasAns_f1']:.2f}, unanswerable {metrics['NoAns_f1']:.2f}); files: {', '.join(result['files'])}")
    return metrics


def demo_multiple_choice(out_dir: Path, tokenizer_dir: Path, epochs: float = 2, n_train: int = 300,
                         seed: int = 0) -> dict:
    """Synthetic RACE-layout articles with 4-option questions (some cloze), both subsets; returns the dev metrics."""
    _step("RACE format: synthetic articles with 4-option questions (some cloze), trained from scratch")
    data_dir = write_synthetic_race(out_dir / "race_data", n_train=n_train, n_dev=50, n_test=50, seed=seed)
    config_file, args = _tiny_run(out_dir, "race", DEMO_MC_MODEL, 5e-3, 16, epochs, seed)
    start = time.perf_counter()
    summary = train_race(str(data_dir), args, str(config_file), tokenizer=str(tokenizer_dir), max_seq_length=96,
                         max_qa_length=24, init="random")
    print(f"trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s; best dev accuracy "
          f"{summary['best_acc']:.4f} at step {summary['best_step']}")
    best = Path(args.output_dir) / "best"
    metrics = evaluate_multiple_choice(read_race(data_dir, "dev"), best)
    print(f"evaluate (best checkpoint, dev): accuracy {metrics['acc']:.4f} (RACE-M {metrics['acc_middle']:.4f}, "
          f"RACE-H {metrics['acc_high']:.4f})")
    result = predict_multiple_choice(read_race(data_dir, "test"), best, out_dir / "race_predictions.jsonl")
    print(f"test predictions: {result['written']} questions -> {result['output']}")
    return metrics


def demo_ner(out_dir: Path, tokenizer_dir: Path, epochs: float = 4, n_train: int = 1000) -> dict:
    """Synthetic CoNLL-2003-layout sentences (IOB1), scored with seqeval; returns the dev metrics."""
    _step("named entities: synthetic CoNLL-2003-layout data (IOB1), tiny Funnel trained from scratch")
    data_dir = write_synthetic_conll(out_dir / "ner_data", n_train=n_train, n_dev=200, n_test=200, seed=0)
    config_file, args = _tiny_run(out_dir, "ner", DEMO_MODEL, 2e-3, 32, epochs)
    start = time.perf_counter()
    summary = train_ner(str(data_dir / "train.txt"), str(data_dir / "dev.txt"), args, str(config_file),
                        tokenizer=str(tokenizer_dir), max_seq_length=DEMO_NER_MAX_SEQ_LENGTH, doc_stride=8,
                        init="random")
    print(f"trained {summary['steps']} steps in {time.perf_counter() - start:.0f} s; best dev entity F1 "
          f"{summary['best_f1']:.2f} at step {summary['best_step']}")
    best = Path(args.output_dir) / "best"
    metrics = evaluate_ner(str(data_dir / "dev.txt"), str(best))
    per_type = ", ".join(f"{kind} {scores['f1']:.1f}" for kind, scores in metrics["per_type"].items())
    print(f"evaluate (best checkpoint, dev, {metrics['scheme']}): entity F1 {metrics['f1']:.2f} (per type: "
          f"{per_type}), token accuracy {metrics['accuracy']:.2f}")
    result = predict_ner(str(data_dir / "test.txt"), str(best), str(out_dir / "ner_test_predictions.txt"))
    print(f"tagged {result['sentences']} test sentences -> {result['output']} (test entity F1 "
          f"{result['metrics']['f1']:.2f})")
    return metrics


def demo_deploy(out_dir: Path) -> None:
    _step("deploy: export to Paddle Inference; classify, answer and tag raw text through the Predictor")
    exports = [export_and_report(out_dir / "glue_run" / "best", out_dir / "export_glue", overwrite=True)]
    classifier = Predictor(out_dir / "export_glue")
    pairs = [("what is the capital of kaldor ?", "the capital of kaldor is druma ."),
             ("what is the capital of kaldor ?", "the language of kaldor is ulvar .")]
    for (question, sentence), result in zip(pairs, classifier.predict([q for q, _ in pairs], [s for _, s in pairs])):
        print(f"  {question!r} / {sentence!r} -> {result['label']} "
              f"(p={result['probabilities'][result['label']]:.3f})")
    exports.append(export_and_report(out_dir / "squad_run" / "best", out_dir / "export_squad", overwrite=True))
    reader = Predictor(out_dir / "export_squad")
    context = "the capital of kaldor is druma . in galtia , the national animal is crane ."
    for question in ("what is the capital of kaldor ?", "what is the national animal of galtia ?",
                     "what is the currency of kaldor ?"):
        answer = reader.predict([question], [context])[0]
        shown = repr(answer["answer"]) if answer["answer"] else "(no answer)"
        print(f"  {question!r} -> {shown} (p={answer['score']:.3f})")
    exports.append(export_and_report(out_dir / "ner_run" / "best", out_dir / "export_ner", overwrite=True))
    tagger = Predictor(out_dir / "export_ner")
    texts = ["Mira Heron visited Port Ives, the capital of Avaria.", "The Bank of Cressia hired Tobin Crane.",
             "The national animal of Elvana is crane."]
    for text, result in zip(texts, tagger.predict(texts)):
        shown = ", ".join(f"{e['entity']} {e['text']!r} [{e['start']}:{e['end']}]" for e in result["entities"])
        print(f"  {text!r} -> {shown or '(no entities)'}")
    worst = max(export.max_differences["paddle_inference"] for export in exports)
    print(f"exported programs reproduce the dynamic graph (max difference {worst:.1e} over the three); "
          f"directories: export_glue/, export_squad/, export_ner/")


def run_demo(out: str | Path = "demo_output") -> int:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = demo_vocabulary(out_dir)
    demo_model_round_trip(out_dir, tokenizer)
    demo_pretrain(out_dir)
    demo_glue(out_dir, out_dir / "tokenizer")
    demo_squad(out_dir, out_dir / "tokenizer")
    demo_multiple_choice(out_dir, out_dir / "tokenizer")
    demo_ner(out_dir, out_dir / "tokenizer")
    demo_deploy(out_dir)
    print(f"\ndemo finished; everything is in {out_dir}/")
    return 0
