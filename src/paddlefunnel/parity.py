"""Numerical comparison with the PyTorch reference (`transformers`), for tests and `paddlefunnel compare`.

Needs the `convert`/`test` extras (torch, transformers). Both models get the same weights through this
project's own conversion and the same padded sentence-pair batch; forward outputs, losses and the
gradients of every parameter and of the input embeddings are compared.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from .checkpoint import HF_LAYOUT, Checkpoint, linear_weight_names, load_state_into, read_checkpoint
from .hub import resolve_pretrained
from .config import FunnelConfig
from .errors import MissingDependencyError
from .modeling import MODEL_CLASSES, model_class_for
from .modeling.inputs import sample_batch
from .registry import CONFIG_FILE, TORCH_WEIGHTS_FILE, architecture, heads_of_body

FORWARD_TOLERANCE = 1e-5  # max abs difference of any output tensor, over max(1, max |reference output|)
BACKWARD_TOLERANCE = 1e-4  # max abs gradient difference relative to the gradient's largest magnitude


def require_reference():
    """(torch, transformers), or a MissingDependencyError saying which extra to install."""
    try:
        import torch  # optional: the `convert` / `test` extras
        import transformers
    except ImportError:
        raise MissingDependencyError(
            "comparing with the reference needs torch and transformers: pip install 'paddlefunnel[convert]'"
        ) from None
    return torch, transformers


# ------------------------------------------------------------------------------------------- models
def make_reference_model(class_name: str, config_kwargs: dict[str, Any], seed: int = 0):
    torch, transformers = require_reference()
    torch.manual_seed(seed)
    model = getattr(transformers, class_name)(transformers.FunnelConfig(**config_kwargs))
    return model.eval()


def convert_reference_model(reference) -> paddle.nn.Layer:
    """A paddlefunnel model holding the reference model's weights, converted by `paddlefunnel.checkpoint`."""
    class_name = type(reference).__name__
    config = FunnelConfig.from_dict(reference.config.to_dict())
    model = MODEL_CLASSES[class_name](config)
    tensors = {k: v.detach().cpu().numpy() for k, v in reference.state_dict().items()}
    info = load_state_into(model, Checkpoint(tensors, HF_LAYOUT, f"<{class_name} in memory>"))
    if info.missing_keys or info.mismatched_keys:
        raise AssertionError(f"conversion left weights unset: {info.missing_keys} {info.mismatched_keys}")
    model.eval()
    return model


# ------------------------------------------------------------------------------------------ compare
@dataclass
class ParityReport:
    class_name: str
    forward: dict[str, float] = field(default_factory=dict)  # output name -> max abs diff / max(1, |ref|)
    forward_mean: dict[str, float] = field(default_factory=dict)
    backward: dict[str, float] = field(default_factory=dict)  # parameter -> relative max abs diff
    backward_mean: dict[str, float] = field(default_factory=dict)
    note: str = ""  # what was compared, when it is not the obvious (e.g. a head initialised at random)
    error: str | None = None  # why this case could not be compared at all (a table row, never a crash)

    @property
    def compared(self) -> bool:
        return self.error is None

    @property
    def max_forward(self) -> float:
        return max(self.forward.values(), default=0.0)

    @property
    def max_backward(self) -> float:
        return max(self.backward.values(), default=0.0)

    @property
    def mean_forward(self) -> float:
        return float(np.mean(list(self.forward_mean.values()))) if self.forward_mean else 0.0

    @property
    def mean_backward(self) -> float:
        return float(np.mean(list(self.backward_mean.values()))) if self.backward_mean else 0.0

    def ok(self, forward_tol: float = FORWARD_TOLERANCE, backward_tol: float = BACKWARD_TOLERANCE) -> bool:
        """Within tolerance; a case that could not be compared is not a failure (its row says why)."""
        return not self.compared or self.max_forward <= forward_tol and self.max_backward <= backward_tol

    def worst(self) -> str:
        name, value = max({**self.forward, **self.backward}.items(), key=lambda kv: kv[1], default=("-", 0.0))
        return f"{name}={value:.2e}"


def _flatten_outputs(output) -> dict[str, np.ndarray]:
    """Every tensor of a model output, keyed like 'hidden_states.3'."""
    flat: dict[str, np.ndarray] = {}
    for key in output.keys():
        value = output[key]
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                flat[f"{key}.{i}"] = _to_numpy(item)
        else:
            flat[key] = _to_numpy(value)
    return flat


def _to_numpy(tensor) -> np.ndarray:
    if isinstance(tensor, paddle.Tensor):
        return tensor.numpy()
    return tensor.detach().cpu().numpy()


def _objective_weights(outputs: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Fixed random projections of the main outputs, so every output element receives gradient."""
    rng = np.random.default_rng(seed)
    main = [k for k in outputs if k in ("last_hidden_state", "logits", "start_logits", "end_logits")]
    return {k: rng.normal(size=outputs[k].shape).astype(np.float32) for k in main}


def _max_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(diff.max()) if diff.size else 0.0, float(diff.mean()) if diff.size else 0.0


def forward_difference(ref: np.ndarray, ours: np.ndarray) -> tuple[float, float]:
    """Max and mean abs difference, divided by max(1, max|reference|).

    Absolute for O(1) tensors (hidden states, probabilities); relative for large ones such as MLM logits
    over a tied N(0, 1) embedding, where fp32 rounding upstream is amplified by the output's own scale.
    """
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
    worst, mean = _max_diff(ref, ours)
    return worst / scale, mean / scale


def _relative_diff(ref_grad: np.ndarray, our_grad: np.ndarray, model_scale: float) -> tuple[float, float]:
    """Max and mean abs difference relative to the gradient's own scale.

    Some gradients are zero in exact arithmetic (e.g. k_head.bias: adding the same vector to every key
    shifts each softmax row by a constant) and hold only rounding noise in both frameworks; below
    1e-5 of the model-wide gradient scale, a gradient is measured against that model-wide scale.
    """
    scale = float(np.abs(ref_grad).max()) if ref_grad.size else 0.0
    if scale < 1e-5 * model_scale:
        scale = model_scale
    scale = max(scale, 1e-30)
    worst, mean = _max_diff(ref_grad, our_grad)
    return worst / scale, mean / scale


def compare_models(reference, model, batch: dict[str, np.ndarray], seed: int = 0,
                   per_position_outputs: bool = True) -> ParityReport:
    """Forward (all outputs, hidden states, attentions, loss) and backward (every gradient) differences.

    `per_position_outputs=False` asks for neither hidden states nor attentions: the path users' training and
    inference take (sentence-level heads then run their last layer for <cls> alone).
    """
    torch, _ = require_reference()
    report = ParityReport(type(reference).__name__)
    flags = {"output_hidden_states": per_position_outputs, "output_attentions": per_position_outputs}

    # Pass 1, from token ids: outputs, loss and parameter gradients.
    reference.zero_grad()
    model.clear_gradients()
    ref_out = reference(**{k: torch.tensor(v) for k, v in batch.items()}, **flags)
    our_out = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, **flags)
    ref_flat, our_flat = _flatten_outputs(ref_out), _flatten_outputs(our_out)
    if set(ref_flat) != set(our_flat):
        raise AssertionError(f"output names differ: reference {sorted(ref_flat)} vs ours {sorted(our_flat)}")
    for key in ref_flat:
        if ref_flat[key].shape != our_flat[key].shape:
            raise AssertionError(f"{key}: shape {our_flat[key].shape}, reference {ref_flat[key].shape}")
        report.forward[key], report.forward_mean[key] = forward_difference(ref_flat[key], our_flat[key])

    weights = _objective_weights(ref_flat, seed)
    ref_obj = sum((getattr(ref_out, k) * torch.tensor(w)).sum() for k, w in weights.items())
    our_obj = sum((getattr(our_out, k) * paddle.to_tensor(w)).sum() for k, w in weights.items())
    if "loss" in ref_flat:
        ref_obj, our_obj = ref_obj + ref_out.loss, our_obj + our_out.loss
    ref_obj.backward()
    our_obj.backward()
    linear = linear_weight_names(model)
    ours = dict(model.named_parameters())
    grads = {}
    for name, param in reference.named_parameters():
        ref_grad = param.grad.detach().numpy() if param.grad is not None else np.zeros(tuple(param.shape), np.float32)
        our_param = ours[name]
        our_grad = our_param.grad.numpy() if our_param.grad is not None else np.zeros(our_param.shape, np.float32)
        grads[name] = (ref_grad, our_grad.T if name in linear else our_grad)
    model_scale = max(float(np.abs(g).max()) for g, _ in grads.values() if g.size)
    for name, (ref_grad, our_grad) in grads.items():
        report.backward[f"grad.{name}"], report.backward_mean[f"grad.{name}"] = _relative_diff(
            ref_grad, our_grad, model_scale)

    # Pass 2, from embeddings: the inputs_embeds path and the gradient with respect to the inputs.
    id_key = "input_ids"
    embeds = reference.get_input_embeddings()(torch.tensor(batch[id_key])).detach().numpy()
    rest = {k: v for k, v in batch.items() if k != id_key}
    ref_embeds = torch.tensor(embeds, requires_grad=True)
    our_embeds = paddle.to_tensor(embeds, stop_gradient=False)
    ref_out2 = reference(inputs_embeds=ref_embeds, **{k: torch.tensor(v) for k, v in rest.items()})
    our_out2 = model(inputs_embeds=our_embeds, **{k: paddle.to_tensor(v) for k, v in rest.items()})
    for key in weights:
        report.forward[f"{key}(inputs_embeds)"], report.forward_mean[f"{key}(inputs_embeds)"] = forward_difference(
            _to_numpy(getattr(ref_out2, key)), _to_numpy(getattr(our_out2, key)))
    sum((getattr(ref_out2, k) * torch.tensor(w)).sum() for k, w in weights.items()).backward()
    sum((getattr(our_out2, k) * paddle.to_tensor(w)).sum() for k, w in weights.items()).backward()
    report.backward["grad.inputs_embeds"], report.backward_mean["grad.inputs_embeds"] = _relative_diff(
        ref_embeds.grad.numpy(), our_embeds.grad.numpy(), model_scale)
    model.clear_gradients()
    return report


def run_case(class_name: str, config_kwargs: dict[str, Any], seed: int = 0, per_position_outputs: bool = True,
             **batch_kwargs) -> ParityReport:
    """One random reference model, converted, compared on a padded sentence-pair batch."""
    reference = make_reference_model(class_name, config_kwargs, seed)
    ours = convert_reference_model(reference)
    batch = sample_batch(ours.config, class_name, seed=seed, **batch_kwargs)
    return compare_models(reference, ours, batch, seed, per_position_outputs=per_position_outputs)


def format_table(rows: list[tuple[str, ParityReport]]) -> str:
    """A markdown table, one row per case; a `note` column appears only when some row has a note or an error."""
    with_notes = any(r.note or r.error for _, r in rows)
    lines = ["| case | forward max | forward mean | backward max (rel) | backward mean (rel) | worst tensor |"
             + (" note |" if with_notes else ""),
             "|---|---|---|---|---|---|" + ("---|" if with_notes else "")]
    for label, r in rows:
        if r.compared:
            cells = (f"| {label} | {r.max_forward:.1e} | {r.mean_forward:.1e} | {r.max_backward:.1e} | "
                     f"{r.mean_backward:.1e} | {r.worst()} |")
        else:
            cells = f"| {label} | - | - | - | - | - |"
        if with_notes:
            cells += f" {r.note if r.compared else 'not compared: ' + str(r.error)} |"
        lines.append(cells)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ checkpoints
def demo_reference_directory(directory, seed: int = 0) -> str:
    """A small random `transformers` FunnelModel saved to `directory` (no downloads)."""
    reference = make_reference_model(
        "FunnelModel",
        dict(vocab_size=1000, d_model=64, n_head=4, d_head=16, d_inner=128, block_sizes=[2, 2, 2],
             num_decoder_layers=2),
        seed=seed,
    )
    reference.save_pretrained(directory)
    return str(directory)


def compare_checkpoint(hf_dir, batch_size: int = 3, seq_len: int = 24, seed: int = 0,
                       revision: str | None = None) -> list[tuple[str, ParityReport]]:
    """The checkpoint's own architecture (with its own num_labels) and every other head of its body, loaded by
    `transformers` and by paddlefunnel, one table row each.

    `hf_dir` is a directory or a hub name (`org/name` at `revision`), resolved once to its local snapshot so that
    both libraries read the very same files. A directory `transformers` cannot read (Paddle layout, .pdparams,
    PaddleNLP's model_config.json) is compared through an HF-layout copy written by paddlefunnel. A head that
    cannot be compared becomes a row saying why (`ParityReport.error`), never an exception: one odd head must not
    hide the others.
    """
    torch, transformers = require_reference()
    transformers.logging.set_verbosity_error()  # its 'newly initialized' notes for random heads are expected
    hf_dir = resolve_pretrained(hf_dir, revision=revision)
    saved = model_class_for(FunnelConfig.from_pretrained(hf_dir)).__name__
    ours = MODEL_CLASSES[saved].from_pretrained(hf_dir)  # our loader on the real files; its errors are the user's
    with tempfile.TemporaryDirectory() as tmp:
        reference_dir, how = _reference_directory(hf_dir, ours, Path(tmp))
        rows = [(f"{saved} (from_pretrained{how})",
                 _compare_saved(transformers, saved, reference_dir, ours, batch_size, seq_len, seed))]
        for head in heads_of_body(architecture(saved).body):
            if head != saved:
                rows.append((head, _compare_head(transformers, head, reference_dir, batch_size, seq_len, seed)))
    return rows


def _reference_directory(directory: Path, ours: paddle.nn.Layer, tmp: Path) -> tuple[Path, str]:
    """The directory `transformers` loads: the checkpoint itself when it reads it, else an HF-layout copy of
    `ours` (paddlefunnel's own conversion) in `tmp`; and a label suffix saying which."""
    if _transformers_reads(directory):
        return directory, ""
    ours.save_pretrained(tmp, hf_format=True)
    return tmp, "; reference from an HF-layout copy"


def _transformers_reads(directory: Path) -> bool:
    """Whether `transformers` can load `directory` as it is: config.json and HF-layout weights of a kind it reads."""
    if not directory.is_dir() or not (directory / CONFIG_FILE).is_file():
        return False
    checkpoint = read_checkpoint(directory)
    name = Path(checkpoint.source).name
    readable = name.endswith((".safetensors", ".index.json")) or name == TORCH_WEIGHTS_FILE
    return checkpoint.layout == HF_LAYOUT and readable


def _compare_saved(transformers, saved: str, reference_dir: Path, ours: paddle.nn.Layer, batch_size: int,
                   seq_len: int, seed: int) -> ParityReport:
    """The checkpoint's own architecture: our `from_pretrained` against the reference's, on the same files."""
    torch, _ = require_reference()
    try:
        torch.manual_seed(seed)
        reference, info = getattr(transformers, saved).from_pretrained(reference_dir, output_loading_info=True)
        report = compare_models(reference.eval(), ours, sample_batch(ours.config, saved, batch_size, seq_len, seed),
                                seed)
    except Exception as err:  # noqa: BLE001 -- reported as the row's reason; the other heads still run
        return ParityReport(saved, error=_reason(err))
    report.note = _loading_note(info)
    return report


def _compare_head(transformers, head: str, reference_dir: Path, batch_size: int, seq_len: int,
                  seed: int) -> ParityReport:
    """Another head of the same body: loaded by the reference (head weights the checkpoint lacks or holds in
    another shape are initialised at random), converted by paddlefunnel, compared."""
    torch, _ = require_reference()
    overrides = {"num_labels": 2} if head == "FunnelForQuestionAnswering" else {}
    try:
        torch.manual_seed(seed)
        reference, info = getattr(transformers, head).from_pretrained(
            reference_dir, ignore_mismatched_sizes=True, output_loading_info=True, **overrides)
        ours = convert_reference_model(reference.eval())
        report = compare_models(reference, ours, sample_batch(ours.config, head, batch_size, seq_len, seed), seed)
    except Exception as err:  # noqa: BLE001 -- reported as the row's reason; the other heads still run
        return ParityReport(head, error=_reason(err))
    report.note = _loading_note(info)
    return report


def _loading_note(info: dict[str, Any]) -> str:
    """What the reference initialised at random: head weights the checkpoint lacks or holds in another shape."""
    parts = []
    mismatched = sorted(str(item[0]) if isinstance(item, (tuple, list)) else str(item)
                        for item in info.get("mismatched_keys") or ())
    if mismatched:
        parts.append(f"random (checkpoint has another shape): {', '.join(mismatched)}")
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        parts.append(f"random (not in checkpoint): {', '.join(missing)}")
    return "; ".join(parts)


def _reason(err: BaseException) -> str:
    """One line for a table cell (markdown pipes escaped)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}".replace("|", "\\|")
