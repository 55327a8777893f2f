"""`paddlefunnel demo` (`make demo`): the whole workflow on built-in data, no downloads. Each step prints what it did.

text -> vocabulary -> tokenizer -> model round trip -> GLUE-format task and SQuAD v2.0-format task, each trained from
scratch, evaluated and predicted -> both exported for Paddle Inference and queried with raw text. Everything is
written under one output directory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import paddle

from ..config import FunnelConfig
from ..data import SYNTHETIC_GLUE_TASK, demo_corpus, write_synthetic_glue, write_synthetic_squad
from ..deploy import Predictor
from ..modeling import FunnelModel
from ..tasks.classification import evaluate_glue, predict_glue, train_glue
from ..tasks.squad import SquadSettings, predict_squad, train_squad
from ..tokenizer import FunnelTokenizer
from ..training import TrainingArguments
from .deploy import export_and_report
from .options import add_command

# A scaled-down Funnel: three blocks like the released models, sizes a CPU trains in about a minute.
DEMO_MODEL = {"model_type": "funnel", "vocab_size": 1000, "block_sizes": [1, 1, 1], "d_model": 64, "n_head": 4,
              "d_head": 16, "d_inner": 128, "num_decoder_layers": 1}
# Question answering needs a little more capacity to learn when a question has no answer.
DEMO_QA_MODEL = {**DEMO_MODEL, "block_sizes": [2, 1, 1], "d_model": 96, "d_head": 24, "d_inner": 192}
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


def demo_glue(out_dir: Path, tokenizer_dir: Path, epochs: float = 10, n_train: int = 4000) -> dict:
    _step(f"GLUE format: a synthetic {SYNTHETIC_GLUE_TASK}-layout task, tiny Funnel trained from scratch")
    data_dir = out_dir / "glue_data"
    write_synthetic_glue(data_dir, n_train=n_train, n_dev=400, n_test=400, seed=0)
    config_file = out_dir / "tiny_config.json"
    config_file.write_text(json.dumps({**DEMO_MODEL}, indent=2))
    run_dir = out_dir / "glue_run"
    args = TrainingArguments(output_dir=str(run_dir), learning_rate=2e-3, per_device_batch_size=32,
                             num_epochs=epochs, warmup_ratio=0.1, logging_steps=25, seed=0,
                             overwrite=True)  # a re-run of the demo starts its runs over
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


def demo_squad(out_dir: Path, tokenizer_dir: Path, epochs: float = 3, n_articles: int = 2000,
               seed: int = 0) -> dict:
    _step("SQuAD v2.0 format: synthetic facts and questions (some unanswerable), trained from scratch")
    train_file = write_synthetic_squad(out_dir / "squad_data" / "train-v2.0.json", n_articles, seed=0)
    dev_file = write_synthetic_squad(out_dir / "squad_data" / "dev-v2.0.json", 60, seed=1)
    config_file = out_dir / "tiny_qa_config.json"
    config_file.write_text(json.dumps(DEMO_QA_MODEL, indent=2))
    run_dir = out_dir / "squad_run"
    settings = SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=16, version_2_with_negative=True)
    args = TrainingArguments(output_dir=str(run_dir), learning_rate=2e-3, per_device_batch_size=32,
                             num_epochs=epochs, warmup_ratio=0.1, logging_steps=25, seed=seed,
                             overwrite=True)
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


def demo_deploy(out_dir: Path) -> None:
    _step("deploy: export to Paddle Inference, answer raw text through the Predictor")
    glue_export = export_and_report(out_dir / "glue_run" / "best", out_dir / "export_glue", overwrite=True)
    classifier = Predictor(out_dir / "export_glue")
    pairs = [("what is the capital of kaldor ?", "the capital of kaldor is druma ."),
             ("what is the capital of kaldor ?", "the language of kaldor is ulvar .")]
    for (question, sentence), result in zip(pairs, classifier.predict([q for q, _ in pairs], [s for _, s in pairs])):
        print(f"  {question!r} / {sentence!r} -> {result['label']} "
              f"(p={result['probabilities'][result['label']]:.3f})")
    export_and_report(out_dir / "squad_run" / "best", out_dir / "export_squad", overwrite=True)
    reader = Predictor(out_dir / "export_squad")
    context = "the capital of kaldor is druma . in galtia , the national animal is crane ."
    for question in ("what is the capital of kaldor ?", "what is the national animal of galtia ?",
                     "what is the currency of kaldor ?"):
        answer = reader.predict([question], [context])[0]
        shown = repr(answer["answer"]) if answer["answer"] else "(no answer)"
        print(f"  {question!r} -> {shown} (p={answer['score']:.3f})")
    print(f"exported programs reproduce the dynamic graph (max difference "
          f"{glue_export.max_differences['paddle_inference']:.1e}); directories: export_glue/, export_squad/")


def run_demo(out: str | Path = "demo_output") -> int:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = demo_vocabulary(out_dir)
    demo_model_round_trip(out_dir, tokenizer)
    demo_glue(out_dir, out_dir / "tokenizer")
    demo_squad(out_dir, out_dir / "tokenizer")
    demo_deploy(out_dir)
    print(f"\ndemo finished; everything is in {out_dir}/")
    return 0
