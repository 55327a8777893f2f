"""Issue #16's second int8 candidate: Paddle Inference's oneDNN int8 after post-training quantization.

Paddle 3.3.1 saves programs in PIR form. This probe takes the only PTQ route that produces one (dynamic-graph
`paddle.quantization.PTQ` on every Linear, calibration, `convert`, the project's own dynamic-shape export), runs it
through Paddle Inference with `enable_onednn()` + `enable_onednn_int8()`, and reports what the optimized program
contains. It answers "can the candidate be timed?" with evidence instead of a guess:

    .venv/bin/python benchmarks/probe_onednn_int8.py            # tiny FunnelForSequenceClassification
    .venv/bin/python benchmarks/probe_onednn_int8.py --model mlp  # Linear + GELU + LayerNorm only

Findings (Paddle 3.3.1 CPU wheel, 2026-12-08; RESULTS.md "int8"):
* Two bugs in paddle/nn/quant/format.py (LinearQuanter / LinearDequanter) block paddle.jit.save of a converted
  model with dynamic dimensions; `_patch_qdq_for_pir` and `persist_qdq_state` work around both.
* The PIR oneDNN pass list has no int8 pass: delete_quant_dequant_linear_op_pass drops every activation Q/DQ pair
  (recording scales only the TensorRT path reads) and fc_onednn_enable_pass makes fp32 onednn_op.fc, so the
  predictor equals the fp32 model (not the fake-quantized one). The oneDNN int8 passes (cpu_quantize_pass,
  quant_dequant_onednn_pass, ...) exist only for the legacy IR: enable_custom_passes([...]) says "Pass
  cpu_quantize_pass has not been registered", and a .json program runs through PIR even with enable_new_ir(False).
* --int-weights (convert(remain_weight=False)): the lone weight dequantize_linear survives, constant_folding_pass
  fails ("Tensor holds no memory"), and with that pass deleted the outputs are wrong: pd_op.dequantize_linear on CPU
  returns quantize(x) (is_test=True) or x (is_test=False), not x * scale / 127.
Options: --config PATH (a FunnelConfig json or a model directory), --no-int8, --debug (IR after every pass),
--threads N --batch B --seq L --calib N --out DIR.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np

import paddlefunnel  # noqa: F401  (first: it sets up MKL for AMD CPUs before Paddle runs any math)
import paddle
from paddle import _C_ops, inference, nn
from paddle.framework import in_pir_mode
from paddle.nn.quant import format as qformat
from paddle.nn.quant.qat import QuantedLinear
from paddle.quantization import PTQ, QuantConfig
from paddle.quantization.observers import AbsmaxObserver

from paddlefunnel import FunnelConfig, FunnelForSequenceClassification
from paddlefunnel.deploy import export
from paddlefunnel.deploy.runners import PROGRAM_NAME, inference_config
from paddlefunnel.modeling import ops as funnel_ops  # its Linear subclasses nn.Linear
from paddlefunnel.modeling.auto import load_model
from paddlefunnel.modeling.inputs import sample_batch
from paddlefunnel.registry import ARCHITECTURES


# ---------------------------------------------------------------------------------------------- Paddle 3.3.1 fixes
def _patch_qdq_for_pir() -> None:
    """1. In PIR mode LinearQuanter/LinearDequanter.forward first create an unused persistable placeholder of shape
    input.shape, which fails for dynamic dimensions: "(InvalidArgument) Each value of attribute 'shape' is expected
    to be no less than 0. But received: shape[0] = -1". The patched forward emits only the op.
    (2. is `persist_qdq_state`.)"""
    pairs = ((qformat.LinearQuanter, _C_ops.quantize_linear), (qformat.LinearDequanter, _C_ops.dequantize_linear))
    for cls, op in pairs:
        orig = cls.forward
        if getattr(orig, "_pir_fixed", False):
            continue

        def forward(self, input, _orig=orig, _op=op):
            if in_pir_mode():
                input.stop_gradient = True
                return _op(input, self._scales, self._zero_point, self.in_accum, self.in_state, self._quant_axis,
                           self._bit_length, self._qmin, self._qmax, 0, True, False)[0]
            return _orig(self, input)

        forward._pir_fixed = True
        cls.forward = forward


def persist_qdq_state(model: nn.Layer) -> nn.Layer:
    """2. in_accum / in_state of each Q/DQ layer are plain tensors that the program captures as generated_tensor_*
    parameters; registered as persistable buffers they are written to .pdiparams like the scales."""
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (qformat.LinearQuanter, qformat.LinearDequanter)):
            for name in ("in_accum", "in_state"):
                value = layer.__dict__.pop(name, None)
                if value is None:
                    value = getattr(layer, name)
                layer.register_buffer(name, paddle.to_tensor(value), persistable=True)
    return model


# ---------------------------------------------------------------------------------------------- models
class Mlp(nn.Layer):
    def __init__(self, d: int = 32, inner: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.blocks = nn.LayerList([nn.LayerList([nn.Linear(d, inner), nn.Linear(inner, d), nn.LayerNorm(d)])
                                    for _ in range(layers)])
        self.act = nn.GELU(approximate=True)

    def forward(self, x):
        for l1, l2, ln in self.blocks:
            x = ln(x + l2(self.act(l1(x))))
        return x


def build(args):
    """(model, list of calibration feeds, check feed, save function, input names)."""
    if args.model == "mlp":
        model = Mlp()
        model.eval()
        rng = np.random.default_rng(0)
        feeds = [{"x": rng.standard_normal((args.batch, args.seq, 32)).astype("float32")}
                 for _ in range(args.calib + 1)]

        def forward(m, feed):
            return [m(paddle.to_tensor(feed["x"]))]

        def save(m, path):
            paddle.jit.save(m, str(path), input_spec=[paddle.static.InputSpec([None, None, 32], "float32", "x")])

        return model, feeds[:-1], feeds[-1], forward, save


    if args.config and Path(args.config).is_dir():
        model = load_model(args.config)
    else:
        if args.config:
            config = FunnelConfig(**json.loads(Path(args.config).read_text()))
        else:  # tests/model_utils.py TINY_CONFIG, num_labels=3, no dropout
            config = FunnelConfig(vocab_size=64, d_model=16, n_head=2, d_head=6, d_inner=24, block_sizes=[2, 1, 2],
                                  num_decoder_layers=1, num_labels=3, hidden_dropout=0.0, attention_dropout=0.0,
                                  activation_dropout=0.0)
        paddle.seed(0)
        model = FunnelForSequenceClassification(config)
    model.eval()
    architecture = type(model).__name__
    rank = ARCHITECTURES[architecture].input_rank
    length = max(args.seq, export.min_seq_len(model.config))
    feeds = [sample_batch(model.config, architecture, args.batch, length, seed=i, labels=False)
             for i in range(args.calib + 1)]

    def forward(m, feed):
        with paddle.no_grad():
            return list(export._head_outputs(m, *(paddle.to_tensor(feed[n]) for n in export.INPUT_NAMES)))

    def save(m, path):
        export._save_program(m, Path(path), rank)  # the project's own export: dynamic batch / length InputSpecs

    return model, feeds[:-1], feeds[-1], forward, save


# ---------------------------------------------------------------------------------------------- PTQ
def quantize(model, calib_feeds, forward, remain_weight: bool):

    linear_types = [nn.Linear, funnel_ops.Linear]
    qc = QuantConfig(activation=None, weight=None)
    qc.add_type_config(linear_types, activation=AbsmaxObserver(), weight=AbsmaxObserver())
    # PTQ maps layers by exact type: the subclass needs its own mapping to QuantedLinear (F.linear forward).
    qc.add_qat_layer_mapping(funnel_ops.Linear, QuantedLinear)
    ptq = PTQ(qc)
    observed = ptq.quantize(model, inplace=False)
    observed.eval()
    n_quanted = sum(isinstance(l, QuantedLinear) for l in observed.sublayers())
    with paddle.no_grad():
        for feed in calib_feeds:
            forward(observed, feed)
    converted = ptq.convert(observed, inplace=False, remain_weight=remain_weight)
    return persist_qdq_state(converted), n_quanted


# ---------------------------------------------------------------------------------------------- inference
def predictor(directory: Path, int8: bool, threads: int, debug: bool, opt_dir: str, deleted=()):
    """The project's Paddle Inference settings (`runners.inference_config`: oneDNN, fp32) plus the int8 switch and
    what the probe needs to look inside: the optimized program saved to `opt_dir`, passes deleted, IR dumps."""
    config = inference_config(directory, threads=threads)
    if int8:
        config.enable_onednn_int8()
    config.set_optim_cache_dir(opt_dir)
    config.enable_save_optim_model(True)  # writes opt_dir/_optimized.json: the program after the PIR passes
    for name in deleted:
        config.delete_pass(name)
    if debug:
        config.switch_ir_debug(True)
    return config, inference.create_predictor(config)


def run(pred, feed):
    for name in pred.get_input_names():
        pred.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(feed[name]))
    pred.run()
    return [pred.get_output_handle(n).copy_to_cpu() for n in pred.get_output_names()]


def op_census(json_path: Path) -> collections.Counter:
    """Op names in a PIR .json program ("1." is the compressed pd_op dialect id)."""
    names = re.findall(r'"#":"((?:1|pd_op|onednn_op|pd_onednn_op)\.[a-z0-9_]+)"', json_path.read_text())
    return collections.Counter("pd_op." + n[2:] if n.startswith("1.") else n for n in names
                               if not n.startswith("1.a_"))


def attribute_values(json_path: Path, name: str) -> collections.Counter:
    return collections.Counter(re.findall(r'\{"AT":\{"#":"0\.a_str","D":"([^"]*)"\},"N":"%s"\}' % name,
                                          json_path.read_text()))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=("funnel", "mlp"), default="funnel")
    p.add_argument("--config")
    p.add_argument("--int-weights", action="store_true")
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=32)
    p.add_argument("--calib", type=int, default=4)
    p.add_argument("--out", default=None, help="directory for the programs (default: a temporary one)")
    args = p.parse_args()

    _patch_qdq_for_pir()
    model, calib, check, forward, save = build(args)
    reference = [o.numpy() for o in forward(model, check)]

    qmodel, n_quanted = quantize(model, calib, forward, remain_weight=not args.int_weights)
    fake_quant = [o.numpy() for o in forward(qmodel, check)]
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="onednn_int8_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / PROGRAM_NAME
    save(qmodel, prefix)
    saved_ops = op_census(Path(str(prefix) + ".json"))
    print(f"QuantedLinear layers: {n_quanted}")
    fake_diff = max(np.abs(a - b).max() for a, b in zip(fake_quant, reference))
    print(f"fake-quant dygraph vs fp32 dygraph: max|diff| {fake_diff:.3e}")
    print(f"saved program {prefix}.json: quantize_linear x{saved_ops['pd_op.quantize_linear']}, "
          f"dequantize_linear x{saved_ops['pd_op.dequantize_linear']}, matmul x{saved_ops['pd_op.matmul']}")

    deleted = ("constant_folding_pass",) if args.int_weights else ()  # it crashes on the lone dequantize_linear
    t0 = time.perf_counter()
    config, pred = predictor(out_dir, not args.no_int8, args.threads, args.debug, str(out_dir / "opt"), deleted)
    print(f"predictor created in {time.perf_counter() - t0:.2f}s; onednn_enabled={config.onednn_enabled()} "
          f"onednn_int8_enabled={config.onednn_int8_enabled()}"
          + (f"; deleted passes {list(deleted)}" if deleted else ""))
    outputs = run(pred, check)
    print("predictor vs fp32 dygraph:       max|diff|",
          " ".join(f"{np.abs(o - r).max():.3e}" for o, r in zip(outputs, reference)))
    print("predictor vs fake-quant dygraph: max|diff|",
          " ".join(f"{np.abs(o - r).max():.3e}" for o, r in zip(outputs, fake_quant)))

    optimized = out_dir / "opt" / "_optimized.json"
    if optimized.is_file():
        census = op_census(optimized)
        print("optimized program ops:", dict(sorted(census.items())))
        dtypes = attribute_values(optimized, "mkldnn_data_type")
        int8_like = [k for k in census if "quant" in k or "int8" in k]
        print("mkldnn_data_type attributes:", dict(dtypes),
              "| int8-related ops left:", int8_like or "none")
    # The PIR oneDNN pass list has no int8 pass; the legacy int8 passes are not registered for PIR:
    probe = inference_config(out_dir, threads=args.threads)
    probe.enable_onednn_int8()
    print("legacy pass_builder int8 passes (ignored by PIR):",
          [n for n in probe.pass_builder().all_passes() if "quant" in n or "int8" in n])
    probe.enable_custom_passes(["cpu_quantize_pass"], True)
    try:
        inference.create_predictor(probe)
        print("cpu_quantize_pass as a PIR custom pass: accepted")
    except Exception as err:  # noqa: BLE001
        print("cpu_quantize_pass as a PIR custom pass:", str(err).strip().splitlines()[-2].strip())


if __name__ == "__main__":
    main()
