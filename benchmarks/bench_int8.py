"""int8 deployment: speed against the fp32 reference and accuracy against fp32 on the demo's dev sets.

    .venv/bin/python benchmarks/bench_int8.py speed [--seq 128 512] [--repeats 7] [--variants]
    .venv/bin/python benchmarks/bench_int8.py accuracy --demo DIR   # DIR: where `paddlefunnel demo` wrote glue_run/...

speed: FunnelForSequenceClassification small-base (random weights; its body is FunnelBaseModel), batch 8, the
threads of bench.py (every core, or OMP_NUM_THREADS), side by side in one process: transformers (PyTorch eager,
the fp32 reference), Paddle Inference fp32, onnxruntime fp32 and int8 (`paddlefunnel export --quantize int8`,
served by `Predictor(precision="int8")`). `--variants` adds the quantization choices that were measured and
rejected (per-channel weights; attention products quantized too). The implementations alternate, in alternating
order; reported: median and minimum time, and reference median / median.

accuracy: the demo's GLUE-layout (QNLI) and SQuAD v2.0-format models, exported with --quantize int8, evaluated on
their dev sets through the Predictor with each backend and precision.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import Case, configure_threads, inputs_for, main_output, reference_and_ours  # noqa: E402,I001
import numpy as np  # noqa: E402
import torch  # noqa: E402

from paddlefunnel.data import load_squad_dataset_for_eval, read_glue, read_squad  # noqa: E402
from paddlefunnel.data.synthetic import SYNTHETIC_GLUE_TASK  # noqa: E402
from paddlefunnel.deploy import Predictor, export_model  # noqa: E402
from paddlefunnel.deploy.export import ONNX_FILE, weights_as_initializers  # noqa: E402
from paddlefunnel.metrics import squad_evaluate  # noqa: E402
from paddlefunnel.tasks.squad import build_features, load_settings, postprocess_predictions  # noqa: E402

SERVING = {"paddle_fp32": ("paddle", "fp32"), "onnxruntime_fp32": ("onnxruntime", "fp32"),
           "onnxruntime_int8": ("onnxruntime", "int8")}
# Rejected quantization choices (file name -> quantize_dynamic options), measured with --variants.
VARIANTS = {"int8_per_channel": {"per_channel": True, "extra_options": {"MatMulConstBOnly": True}},
            "int8_all_matmuls": {"per_channel": False, "extra_options": {"MatMulConstBOnly": False}},
            "int8_reduce_range": {"per_channel": False, "reduce_range": True,
                                  "extra_options": {"MatMulConstBOnly": True}}}


def quantize_variant(export_dir: Path, name: str) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(export_dir / ONNX_FILE))
    weights_as_initializers(model)
    prepared = export_dir / "prepared.onnx"
    onnx.save(model, str(prepared))
    target = export_dir / f"{name}.onnx"
    quantize_dynamic(prepared, target, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8, **VARIANTS[name])
    return target


def speed(seq_lens: list[int], repeats: int, variants: bool) -> None:
    from paddlefunnel.deploy.runners import OnnxRunner

    threads = configure_threads()
    for seq in seq_lens:
        case = Case("inference", "FunnelForSequenceClassification", "small-base", seq)
        reference, ours = reference_and_ours(case)
        reference.eval()
        inputs = inputs_for(ours.config, seq)
        torch_inputs = {k: torch.tensor(v) for k, v in inputs.items()}
        with tempfile.TemporaryDirectory() as tmp:
            ours.save_pretrained(Path(tmp) / "model")
            export_dir = Path(tmp) / "export"
            export_model(Path(tmp) / "model", export_dir, quantize="int8", quiet=True, check_shapes=((1, 16),))

            def run_reference():
                with torch.no_grad():
                    return main_output(reference(**torch_inputs)).numpy()

            impls = {"reference": run_reference}
            for name, (backend, precision) in SERVING.items():
                predictor = Predictor(export_dir, device="cpu", threads=threads, batch_size=len(inputs["input_ids"]),
                                      backend=backend, precision=precision)
                impls[name] = lambda p=predictor: p.run(**inputs)["logits"]
            if variants:
                for name in VARIANTS:
                    runner = OnnxRunner(quantize_variant(export_dir, name), threads)
                    impls[f"onnxruntime_{name}"] = lambda r=runner: r.run(inputs)[0]
            report(seq, threads, repeats, impls)


def report(seq: int, threads: int, repeats: int, impls: dict) -> None:
    outputs = {name: fn() for name, fn in impls.items()}  # also the warm-up
    for fn in impls.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            impls[name]()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = outputs["reference"]
    scale = max(1.0, float(np.abs(reference).max()))
    print(f"\nFunnelForSequenceClassification small-base, 8 x {seq}, {threads} threads, {repeats} interleaved repeats")
    print("| implementation | median ms | min ms | x reference (medians) | max abs logit diff / max(1, max abs) |")
    print("|---|---|---|---|---|")
    for name in names:
        diff = float(np.abs(outputs[name] - reference).max()) / scale
        print(f"| {name} | {medians[name] * 1000:.0f} | {min(times[name]) * 1000:.0f} | "
              f"{medians['reference'] / medians[name]:.2f} | {diff:.1e} |", flush=True)


# ------------------------------------------------------------------------------------------- accuracy
def glue_accuracy(export_dir: Path, data_dir: Path, backend: str, precision: str) -> float:
    predictor = Predictor(export_dir, device="cpu", backend=backend, precision=precision)
    examples = read_glue(data_dir, SYNTHETIC_GLUE_TASK, "dev")
    results = predictor.predict([e.text_a for e in examples], [e.text_b for e in examples])
    return 100.0 * float(np.mean([r["label"] == e.label for r, e in zip(results, examples)]))


def squad_scores(export_dir: Path, dev_file: Path, backend: str, precision: str) -> dict[str, float]:
    predictor = Predictor(export_dir, device="cpu", backend=backend, precision=precision)
    settings = load_settings(export_dir)
    examples = read_squad(dev_file).examples
    features = build_features(examples, predictor.tokenizer, settings)
    arrays = features.arrays
    outputs = predictor.run(arrays["input_ids"], arrays["attention_mask"], arrays["token_type_ids"])
    predictions, _, null_odds = postprocess_predictions(examples, features, outputs["start_logits"],
                                                        outputs["end_logits"], settings)
    return squad_evaluate(load_squad_dataset_for_eval(dev_file), predictions, null_odds)


def accuracy(demo: Path, out: Path) -> None:
    glue_export, squad_export = out / "export_glue_int8", out / "export_squad_int8"
    export_model(demo / "glue_run" / "best", glue_export, quantize="int8", overwrite=True, quiet=True)
    export_model(demo / "squad_run" / "best", squad_export, quantize="int8", overwrite=True, quiet=True)
    print("| model (dev set) | metric | " + " | ".join(SERVING) + " | int8 - fp32 (paddle) |")
    print("|---|---|" + "---|" * (len(SERVING) + 1))
    glue = {name: glue_accuracy(glue_export, demo / "glue_data", *serving) for name, serving in SERVING.items()}
    print(f"| GLUE-layout {SYNTHETIC_GLUE_TASK} (400) | accuracy | " + " | ".join(f"{v:.2f}" for v in glue.values())
          + f" | {glue['onnxruntime_int8'] - glue['paddle_fp32']:+.2f} |", flush=True)
    dev_file = demo / "squad_data" / "dev-v2.0.json"
    squad = {name: squad_scores(squad_export, dev_file, *serving) for name, serving in SERVING.items()}
    for metric in ("exact", "f1"):
        print(f"| SQuAD v2.0-format (360) | {metric} | " + " | ".join(f"{s[metric]:.2f}" for s in squad.values())
              + f" | {squad['onnxruntime_int8'][metric] - squad['paddle_fp32'][metric]:+.2f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--seq", type=int, nargs="+", default=[128, 512])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--variants", action="store_true", help="also the rejected quantization choices")
    p = sub.add_parser("accuracy")
    p.add_argument("--demo", type=Path, required=True, help="a `paddlefunnel demo --out` directory")
    p.add_argument("--out", type=Path, default=None, help="where the exports go (default: DEMO/int8)")
    args = parser.parse_args(argv)
    if args.what == "speed":
        speed(args.seq, args.repeats, args.variants)
    else:
        accuracy(args.demo, args.out or args.demo / "int8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
