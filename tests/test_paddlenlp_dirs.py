"""Model directories as PaddleNLP and the earlier Paddle reproduction write them, loaded by directory.

PaddleNLP is not a dependency: each test builds the directory itself from a tiny paddlefunnel model, with the
files PaddleNLP writes (paddlenlp/transformers/configuration_utils.py, funnel/configuration.py, the tokenizer's
save_pretrained): `model_state.pdparams` (paddle.save of the state dict) with `config.json` (PaddleNLP >= 2.5)
or the legacy nested `model_config.json` (<= 2.4), and `vocab.txt` + `tokenizer_config.json`.
"""

import json
import logging

import numpy as np
import paddle
import pytest
from safetensors.numpy import save_file

from model_utils import tiny
from paddlefunnel import (
    FunnelConfig,
    FunnelForSequenceClassification,
    FunnelModel,
    FunnelTokenizer,
)
from paddlefunnel.checkpoint import load_state_into, read_checkpoint
from paddlefunnel.cli import main
from paddlefunnel.errors import InputError, MissingFileError, WeightsError
from paddlefunnel.modeling import load_model
from paddlefunnel.modeling.inputs import sample_batch
from paddlefunnel.registry import (
    CONFIG_FILE,
    LEGACY_CONFIG_FILE,
    PADDLENLP_WEIGHTS_FILE,
    SAFE_WEIGHTS_FILE,
    TOKENIZER_CONFIG_FILE,
    VOCAB_FILE,
)

# The Funnel fields PaddleNLP's FunnelConfig writes (all of them: none is in its base class's defaults).
PADDLENLP_FUNNEL_FIELDS = (
    "vocab_size", "block_sizes", "block_repeats", "num_decoder_layers", "d_model", "n_head", "d_head", "d_inner",
    "hidden_act", "hidden_dropout", "attention_dropout", "activation_dropout", "initializer_range",
    "initializer_std", "layer_norm_eps", "pooling_type", "attention_type", "separate_cls", "truncate_seq",
    "pool_q_only",
)
PADDLENLP_ONLY = {"max_position_embeddings": 512, "type_vocab_size": 3}
NUM_LABELS = 3
SPECIALS = ["<pad>", "<unk>", "<cls>", "<sep>", "<mask>", "<s>", "</s>"]
WORDS = ["the", "quick", "brown", "fox", "jump", "##s", "over", "lazy", "dog", "Dog", ".", ",", "un", "##aff",
         "##able", "hello", "world"]
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello, world", "unaffable Dog"]


# ------------------------------------------------------------------------------------------ builders
def make_model(cls=FunnelModel, seed=0):
    paddle.seed(seed)
    extra = {"num_labels": NUM_LABELS} if cls is FunnelForSequenceClassification else {}
    model = cls(FunnelConfig(**tiny(**extra)))
    model.eval()
    return model


def run(model):
    batch = sample_batch(model.config, type(model).__name__)
    out = model(**{k: paddle.to_tensor(batch[k]) for k in ("input_ids", "attention_mask", "token_type_ids")})
    return (out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state).numpy()


def write_pdparams(model, directory, dtype=None):
    """paddle.save of the state dict, as PaddleNLP's save_pretrained does (optionally in another dtype)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if dtype is not None:
        state = {k: paddle.to_tensor(v.numpy()).astype(dtype) for k, v in state.items()}
    paddle.save(state, str(directory / PADDLENLP_WEIGHTS_FILE))


def funnel_kwargs(model):
    data = model.config.to_dict()
    return {**{k: data[k] for k in PADDLENLP_FUNNEL_FIELDS}, **PADDLENLP_ONLY}


def write_paddlenlp_config(model, directory, **changes):
    """config.json as PaddleNLP >= 2.5 writes it (to_diff_dict: Funnel fields, its bookkeeping, labels if not 2)."""
    data = {**funnel_kwargs(model), "architectures": [type(model).__name__], "model_type": "funnel",
            "paddlenlp_version": "2.6.1", "dtype": "float32"}
    if model.config.num_labels != 2:
        data["id2label"] = {str(k): v for k, v in model.config.id2label.items()}
        data["label2id"] = dict(model.config.label2id)
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not ...}  # `key=...` removes a key
    (directory / CONFIG_FILE).write_text(json.dumps(data, indent=2, sort_keys=True))


def legacy_config(model, nested=True):
    """model_config.json as PaddleNLP <= 2.4 wrote it: a head wraps the body's init_args, num_classes beside."""
    kwargs = funnel_kwargs(model)
    body = {"init_args": [kwargs], "init_class": "FunnelModel"} if nested else {**kwargs, "init_class": "FunnelModel"}
    if isinstance(model, FunnelForSequenceClassification):
        return {"init_args": [body], "init_class": "FunnelForSequenceClassification", "num_classes": NUM_LABELS}
    return body


def write_legacy_config(directory, data):
    (directory / LEGACY_CONFIG_FILE).write_text(json.dumps(data))


def paddlenlp_dir(tmp_path, model, layout, name="nlp", dtype=None):
    directory = tmp_path / name
    write_pdparams(model, directory, dtype)
    if layout == "config.json":
        write_paddlenlp_config(model, directory)
    else:
        write_legacy_config(directory, legacy_config(model, nested=(layout == "legacy")))
    return directory


def cast_warnings(caplog):
    return [r for r in caplog.records if r.name == "paddlefunnel" and r.levelno == logging.WARNING
            and "precision" in r.getMessage()]


# ------------------------------------------------------------------------------------------ weights + config
@pytest.mark.parametrize("layout", ["config.json", "legacy", "legacy_flat_kwargs"])
@pytest.mark.parametrize("cls", [FunnelModel, FunnelForSequenceClassification])
def test_paddlenlp_directory_loads_exactly(tmp_path, caplog, layout, cls):
    original = make_model(cls)
    directory = paddlenlp_dir(tmp_path, original, layout)
    with caplog.at_level(logging.INFO, logger="paddlefunnel"):
        loaded, info = cls.from_pretrained(directory, output_loading_info=True)
    assert info.source.endswith(PADDLENLP_WEIGHTS_FILE)
    assert not info.missing_keys and not info.unexpected_keys
    assert not cast_warnings(caplog)
    np.testing.assert_array_equal(run(loaded), run(original))
    config = FunnelConfig.from_pretrained(directory)
    assert config.architectures == [cls.__name__]
    assert config.num_labels == original.config.num_labels
    assert config.block_sizes == original.config.block_sizes and config.d_inner == original.config.d_inner
    assert config.extra["max_position_embeddings"] == 512  # PaddleNLP's own keys are kept, not dropped
    assert "init_class" not in config.extra and "init_args" not in config.extra
    # The "whatever this directory holds" loader (export, evaluate) picks the class the config names.
    assert type(load_model(directory)) is cls


def test_legacy_head_arguments_win_over_the_body(tmp_path):
    model = make_model(FunnelForSequenceClassification)
    data = legacy_config(model)
    data["init_args"][0]["init_args"][0]["num_classes"] = 7  # the head's own num_classes is the one used
    data["init_args"][0]["hidden_dropout"] = 0.3  # kwargs beside the body's init_class count too
    directory = tmp_path / "legacy"
    directory.mkdir()
    write_legacy_config(directory, data)
    config = FunnelConfig.from_pretrained(directory)
    assert config.num_labels == NUM_LABELS and config.hidden_dropout == 0.3
    # The file itself can be named, like config.json.
    assert FunnelConfig.from_json_file(directory / LEGACY_CONFIG_FILE) == config


def test_paddlenlp_config_variants(tmp_path):
    model = make_model(FunnelForSequenceClassification)
    directory = tmp_path / "nlp"
    directory.mkdir()
    # No model_type, labels as num_classes, PaddleNLP's return_dict=False (its API, not the model's).
    write_paddlenlp_config(model, directory, model_type=..., id2label=..., label2id=..., num_classes=NUM_LABELS,
                           return_dict=False)
    config = FunnelConfig.from_pretrained(directory)
    assert config.num_labels == NUM_LABELS
    assert config.return_dict is True and "return_dict" not in config.extra
    assert config.extra["paddlenlp_version"] == "2.6.1"


def test_config_json_preferred_over_legacy(tmp_path):
    model = make_model(FunnelForSequenceClassification)
    directory = paddlenlp_dir(tmp_path, model, "config.json")
    legacy = legacy_config(model)
    legacy["num_classes"] = 5
    write_legacy_config(directory, legacy)
    assert FunnelConfig.from_pretrained(directory).num_labels == NUM_LABELS


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_other_precisions_are_cast_with_one_note(tmp_path, caplog, dtype):
    original = make_model(FunnelForSequenceClassification)
    directory = paddlenlp_dir(tmp_path, original, "legacy", dtype=dtype)
    stored = read_checkpoint(directory).tensors
    assert {v.dtype for v in stored.values()} == {np.dtype("uint16" if dtype == "bfloat16" else dtype)}
    with caplog.at_level(logging.WARNING, logger="paddlefunnel"):
        loaded = FunnelForSequenceClassification.from_pretrained(directory)
    notes = cast_warnings(caplog)
    assert len(notes) == 1
    message = notes[0].getMessage()
    assert str(directory / PADDLENLP_WEIGHTS_FILE) in message and dtype in message and "float32" in message
    assert all(p.dtype == paddle.float32 for p in loaded.parameters())
    if dtype == "float64":
        np.testing.assert_array_equal(run(loaded), run(original))
        return
    # Exactly the original weights rounded to the stored precision ...
    rounded = make_model(FunnelForSequenceClassification)
    rounded.set_state_dict({k: v.astype(dtype).astype("float32") for k, v in original.state_dict().items()})
    for key, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), rounded.state_dict()[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(run(loaded), run(rounded))
    # ... so the outputs stay within that rounding of the float32 model's.
    tolerance = 2e-2 if dtype == "float16" else 1e-1
    np.testing.assert_allclose(run(loaded), run(original), atol=tolerance, rtol=tolerance)


def test_safetensors_preferred_over_model_state(tmp_path):
    wanted, other = make_model(seed=0), make_model(seed=1)
    directory = tmp_path / "both"
    wanted.save_pretrained(directory)
    write_pdparams(other, directory)
    assert read_checkpoint(directory).source == directory / SAFE_WEIGHTS_FILE
    np.testing.assert_array_equal(run(FunnelModel.from_pretrained(directory)), run(wanted))


def test_paddlenlp_safetensors_are_in_paddle_layout(tmp_path):
    # PaddleNLP's safe_serialization writes {"format": "np"} in Paddle's layout ([in, out] Linear weights); the
    # classifier's square linear_hidden would load transposed, silently, if taken for PyTorch's layout.
    original = make_model(FunnelForSequenceClassification)
    directory = tmp_path / "nlp"
    directory.mkdir()
    save_file({k: v.numpy() for k, v in original.state_dict().items()}, str(directory / SAFE_WEIGHTS_FILE),
              metadata={"format": "np"})
    write_paddlenlp_config(original, directory)
    np.testing.assert_array_equal(run(FunnelForSequenceClassification.from_pretrained(directory)), run(original))


# ------------------------------------------------------------------------------------------ tokenizer
def write_vocab(directory):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / VOCAB_FILE).write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")


def paddlenlp_tokenizer_config(do_lower_case=True, added_tokens=False):
    """tokenizer_config.json as PaddleNLP's tokenizer save_pretrained writes it (init kwargs + bookkeeping)."""
    names = dict(unk_token="<unk>", sep_token="<sep>", pad_token="<pad>", cls_token="<cls>", mask_token="<mask>",
                 bos_token="<s>", eos_token="</s>")
    if added_tokens:  # newer PaddleNLP serialises special tokens as AddedToken objects
        names = {k: {"__type": "AddedToken", "content": v, "lstrip": False, "normalized": True, "rstrip": False,
                     "single_word": False} for k, v in names.items()}
    return {"do_lower_case": do_lower_case, **names, "wordpieces_prefix": "##", "model_max_length": 512,
            "padding_side": "right", "init_inputs": [], "init_class": "FunnelTokenizer",
            "tokenizer_class": "FunnelTokenizer", "clean_up_tokenization_spaces": False,
            "added_tokens_decoder": {}}


@pytest.mark.parametrize("do_lower_case", [True, False])
@pytest.mark.parametrize("added_tokens", [False, True])
def test_tokenizer_from_paddlenlp_files(tmp_path, do_lower_case, added_tokens):
    directory = tmp_path / "nlp"
    write_vocab(directory)
    config = paddlenlp_tokenizer_config(do_lower_case, added_tokens)
    (directory / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    theirs = FunnelTokenizer.from_pretrained(directory)
    ours_dir = tmp_path / "ours"
    FunnelTokenizer(directory / VOCAB_FILE, do_lower_case=do_lower_case, model_max_length=512).save_pretrained(ours_dir)
    ours = FunnelTokenizer.from_pretrained(ours_dir)
    assert theirs.model_max_length == 512 and theirs.do_lower_case is do_lower_case
    for text in TEXTS:
        assert theirs(text, "the dog") == ours(text, "the dog")
    # do_lower_case is read from their file, not defaulted: "Dog" is in the vocabulary only cased.
    dog = theirs.convert_tokens_to_ids("Dog")
    assert (dog in theirs.encode("Dog")) is (not do_lower_case)


# ------------------------------------------------------------------------------------------ convert
def test_convert_paddlenlp_directory(tmp_path, capsys):
    original = make_model(FunnelForSequenceClassification)
    source = paddlenlp_dir(tmp_path, original, "legacy")
    write_vocab(source)
    (source / TOKENIZER_CONFIG_FILE).write_text(json.dumps(paddlenlp_tokenizer_config()), encoding="utf-8")
    target = tmp_path / "converted"
    assert main(["convert", str(source), str(target)]) == 0
    assert "FunnelForSequenceClassification" in capsys.readouterr().out
    assert {CONFIG_FILE, SAFE_WEIGHTS_FILE, VOCAB_FILE, TOKENIZER_CONFIG_FILE} <= {p.name for p in target.iterdir()}
    converted = FunnelForSequenceClassification.from_pretrained(target)
    assert converted.config.num_labels == NUM_LABELS
    np.testing.assert_array_equal(run(converted), run(original))
    assert FunnelTokenizer.from_pretrained(target)(TEXTS[0]) == FunnelTokenizer.from_pretrained(source)(TEXTS[0])


# ------------------------------------------------------------------------------------------ bad input
def test_weights_without_any_config(tmp_path, capsys):
    directory = tmp_path / "weights_only"
    write_pdparams(make_model(), directory)
    (directory / "model_cfg.yaml").write_text("d_model: 16\n")
    for attempt in (lambda: FunnelModel.from_pretrained(directory), lambda: FunnelConfig.from_pretrained(directory)):
        with pytest.raises(MissingFileError) as err:
            attempt()
        assert str(directory) in str(err.value)
        assert CONFIG_FILE in str(err.value) and LEGACY_CONFIG_FILE in str(err.value)
    assert main(["convert", str(directory), str(tmp_path / "out")]) == 2
    assert LEGACY_CONFIG_FILE in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("data, where", [
    ({"init_args": [{"vocab_size": 64}], "init_class": "BertModel"}, "init_class is 'BertModel'"),
    ({"init_args": [{"init_args": [{"vocab_size": 64}], "init_class": "BertModel"}],
      "init_class": "FunnelForSequenceClassification", "num_classes": 3}, "init_args[0].init_class is 'BertModel'"),
    ({"init_args": [{"init_args": [{}], "init_class": "FunnelModel"}], "init_class": "BertForSequenceClassification"},
     "init_class is 'BertForSequenceClassification'"),
])
def test_legacy_config_of_another_architecture(tmp_path, data, where):
    directory = tmp_path / "bert"
    write_pdparams(make_model(), directory)
    write_legacy_config(directory, data)
    with pytest.raises(InputError) as err:
        FunnelModel.from_pretrained(directory)
    message = str(err.value)
    assert str(directory / LEGACY_CONFIG_FILE) in message and where in message
    assert "expected a Funnel-Transformer class" in message and "FunnelModel" in message


@pytest.mark.parametrize("data, expected", [
    ({"init_args": "vocab_size=64", "init_class": "FunnelModel"}, "init_args is str"),
    ({"init_args": 64, "init_class": "FunnelModel"}, "init_args is int"),
    ({"init_args": [{"init_args": [30522, 768], "init_class": "FunnelModel"}],
      "init_class": "FunnelForSequenceClassification"}, "init_args[0].init_args[0] is 30522"),
    ({"init_args": [{"init_args": [{}], "init_class": "FunnelModel"}],
      "init_class": "FunnelForSequenceClassification", "num_classes": "three"}, "num_classes is 'three'"),
])
def test_malformed_legacy_config(tmp_path, data, expected):
    directory = tmp_path / "bad"
    directory.mkdir()
    write_legacy_config(directory, data)
    with pytest.raises(InputError) as err:
        FunnelConfig.from_pretrained(directory)
    assert str(directory / LEGACY_CONFIG_FILE) in str(err.value) and expected in str(err.value)


def test_legacy_config_that_is_not_json_object(tmp_path):
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / LEGACY_CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(InputError, match="model_config.json: expected a JSON object"):
        FunnelConfig.from_pretrained(directory)


def test_paddlenlp_config_of_another_model_without_model_type(tmp_path):
    directory = tmp_path / "bert"
    directory.mkdir()
    (directory / CONFIG_FILE).write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                     "paddlenlp_version": "2.6.1", "hidden_size": 768}))
    with pytest.raises(InputError) as err:
        FunnelConfig.from_pretrained(directory)
    assert str(directory / CONFIG_FILE) in str(err.value) and "BertForSequenceClassification" in str(err.value)


def test_integer_weights_refused_before_any_copy(tmp_path):
    original = make_model()
    directory = paddlenlp_dir(tmp_path, original, "config.json")
    state = {k: v.numpy() for k, v in original.state_dict().items()}
    state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"].astype(np.int32)
    paddle.save(state, str(directory / PADDLENLP_WEIGHTS_FILE))
    target = make_model(seed=3)
    before = run(target)
    with pytest.raises(WeightsError) as err:
        load_state_into(target, read_checkpoint(directory))
    assert "embeddings.word_embeddings.weight" in str(err.value) and "int32" in str(err.value)
    np.testing.assert_array_equal(run(target), before)
