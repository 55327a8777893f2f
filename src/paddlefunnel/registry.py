"""One table of facts that several rooms need: the architectures (heads) and the names of the files that
travel with a model. Plain data, no imports of the model code, so every layer can read it.

`modeling.MODEL_CLASSES` maps the same names to classes and is checked against this table at import.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------------------ file names
CONFIG_FILE = "config.json"
# PaddleNLP <= 2.4 and the earlier Paddle reproduction: the model's kwargs nested in init_args / init_class.
LEGACY_CONFIG_FILE = "model_config.json"
CONFIG_FILES = (CONFIG_FILE, LEGACY_CONFIG_FILE)  # the order a directory is searched
# Weights, in the order a directory is searched (safetensors first: the safe, default format).
SAFE_WEIGHTS_FILE = "model.safetensors"
SAFE_WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
PADDLE_WEIGHTS_FILE = "model.pdparams"
PADDLENLP_WEIGHTS_FILE = "model_state.pdparams"  # PaddleNLP (every version) and the earlier reproduction
TORCH_WEIGHTS_FILE = "pytorch_model.bin"
WEIGHTS_FILES = (SAFE_WEIGHTS_FILE, SAFE_WEIGHTS_INDEX_FILE, PADDLE_WEIGHTS_FILE, PADDLENLP_WEIGHTS_FILE,
                 TORCH_WEIGHTS_FILE)
# Tokenizer files (HuggingFace names); a tokenizer needs vocab.txt or tokenizer.json, the rest is optional.
VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILES = (VOCAB_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE)
VOCABULARY_FILES = (TOKENIZER_FILE, VOCAB_FILE)
# Task settings that `paddlefunnel train` saves beside a model, so it can be evaluated, exported and served alone.
TASK_FILE = "task.json"  # classification: task name, max_seq_length, label_list
SQUAD_SETTINGS_FILE = "squad_settings.json"  # question answering: windows and answer search
TASK_SETTINGS_FILES = (TASK_FILE, SQUAD_SETTINGS_FILE)
# Everything besides config and weights that travels with a model (conversion, export).
SIDECAR_FILES = TOKENIZER_FILES + TASK_SETTINGS_FILES
RESULTS_FILE = "eval_results.json"  # a training run's summary, in its output directory
# The model directories `paddlefunnel pretrain run` writes into its output directory (ELECTRA; MLM).
PRETRAINING_OUTPUT_DIRS = {"electra": ("discriminator", "generator"), "mlm": ("mlm",)}
EXPORT_FILE = "export.json"  # marks an export directory (`paddlefunnel export`): what the program takes and returns

# ------------------------------------------------------------------------------------------ heads
BODY = "FunnelModel"  # encoder + decoder: one vector per input token
BASE_BODY = "FunnelBaseModel"  # encoder only: the compressed sequence
LABEL_KEYS = ("labels", "start_positions", "end_positions")  # forward arguments that are targets, not inputs


@dataclass(frozen=True)
class Architecture:
    """What the rest of the package needs to know about one model class, by its name."""

    name: str
    body: str  # the body it is built on (BODY or BASE_BODY); a checkpoint of that body serves it
    outputs: tuple[str, ...]  # main output tensors, in order: what an exported program returns
    input_rank: int = 2  # 2: [batch, seq_len]; 3: [batch, choices, seq_len]
    predicts: str | None = None  # raw-text task the Predictor serves: "classification", "question_answering"


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(BODY, BODY, ("last_hidden_state",)),
        Architecture(BASE_BODY, BASE_BODY, ("last_hidden_state",)),
        Architecture("FunnelForPreTraining", BODY, ("logits",)),
        Architecture("FunnelForMaskedLM", BODY, ("logits",)),
        Architecture("FunnelForSequenceClassification", BASE_BODY, ("logits",), predicts="classification"),
        Architecture("FunnelForMultipleChoice", BASE_BODY, ("logits",), input_rank=3, predicts="multiple_choice"),
        Architecture("FunnelForTokenClassification", BODY, ("logits",), predicts="token_classification"),
        Architecture("FunnelForQuestionAnswering", BODY, ("start_logits", "end_logits"),
                     predicts="question_answering"),
    )
}


def architecture(name: str) -> Architecture:
    """The entry for `name`; an unknown name is a KeyError listing the known ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") from None


def heads_of_body(body: str) -> list[str]:
    """Every architecture a checkpoint of `body` can be loaded into (the body itself first)."""
    return [name for name, arch in ARCHITECTURES.items() if arch.body == body]


def architecture_serving(task: str) -> str:
    """The architecture whose exported model the Predictor uses for raw-text `task`."""
    return next(name for name, arch in ARCHITECTURES.items() if arch.predicts == task)
