"""FunnelConfig: reference defaults, config.json round trips, validation, presets."""

import json

import pytest

from paddlefunnel import FunnelConfig, preset_names
from paddlefunnel.config import _FUNNEL_DEFAULTS


def test_defaults_equal_the_reference():
    import transformers

    ours, reference = FunnelConfig().to_dict(), transformers.FunnelConfig().to_dict()
    for key in _FUNNEL_DEFAULTS:
        assert ours[key] == (list(reference[key]) if isinstance(reference[key], tuple) else reference[key]), key
    assert ours["model_type"] == "funnel"
    assert FunnelConfig().num_labels == transformers.FunnelConfig().num_labels


def test_reference_config_json_round_trip_keeps_unknown_keys(tmp_path):
    import transformers

    reference = transformers.FunnelConfig(d_model=32, n_head=4, block_sizes=[1, 2], num_labels=3,
                                          id2label={0: "neg", 1: "neu", 2: "pos"})
    reference.save_pretrained(tmp_path / "hf")
    raw = json.loads((tmp_path / "hf" / "config.json").read_text())
    raw["my_custom_key"] = {"nested": [1, 2]}
    (tmp_path / "hf" / "config.json").write_text(json.dumps(raw))

    ours = FunnelConfig.from_pretrained(tmp_path / "hf")
    assert ours.d_model == 32 and ours.block_sizes == [1, 2] and ours.block_repeats == [1, 1]
    assert ours.id2label == {0: "neg", 1: "neu", 2: "pos"} and ours.num_labels == 3
    ours.save_pretrained(tmp_path / "ours")
    written = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert written["my_custom_key"] == {"nested": [1, 2]}
    assert written["transformers_version"] == raw["transformers_version"]
    back = transformers.FunnelConfig.from_pretrained(tmp_path / "ours")
    assert back.d_model == 32 and back.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert FunnelConfig.from_pretrained(tmp_path / "ours") == ours


def test_aliases_and_derived_sizes():
    config = FunnelConfig(hidden_size=128, num_attention_heads=4, block_sizes=[2, 3])
    assert (config.d_model, config.n_head, config.hidden_size, config.num_attention_heads) == (128, 4, 128, 4)
    assert config.num_hidden_layers == 5 and config.num_blocks == 2


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"d_model": -8}, "d_model"),
        ({"n_head": 0}, "n_head"),
        ({"vocab_size": 1.5}, "vocab_size"),
        ({"block_sizes": []}, "block_sizes"),
        ({"block_sizes": [2, 0]}, "block_sizes"),
        ({"block_sizes": [2, 2], "block_repeats": [1]}, "block_repeats"),
        ({"attention_type": "absolute"}, "attention_type"),
        ({"pooling_type": "sum"}, "pooling_type"),
        ({"hidden_act": "swishy"}, "hidden_act"),
        ({"hidden_dropout": 1.5}, "hidden_dropout"),
        ({"num_decoder_layers": -1}, "num_decoder_layers"),
        ({"layer_norm_eps": 0}, "layer_norm_eps"),
        ({"d_model": 15}, "d_model"),
        ({"problem_type": "ranking"}, "problem_type"),
    ],
)
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"FunnelConfig\.{field}="):
        FunnelConfig(**kwargs)


def test_invalid_enum_lists_the_allowed_values():
    with pytest.raises(ValueError, match="relative_shift.*factorized"):
        FunnelConfig(attention_type="absolute")


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds(name):
    config = FunnelConfig.from_preset(name)
    assert config.vocab_size == 30522 and config.d_head == 64 and config.num_decoder_layers == 2
    assert config.separate_cls and config.truncate_seq and config.pool_q_only
    assert config.attention_type == "relative_shift" and config.pooling_type == "mean"


def test_preset_names_and_shorthand():
    assert len(preset_names()) == 10
    xlarge = FunnelConfig.from_preset("funnel-transformer/xlarge")
    assert xlarge == FunnelConfig.from_preset("xlarge")
    assert (xlarge.block_sizes, xlarge.d_model, xlarge.n_head, xlarge.d_inner) == ([10, 10, 10], 1024, 16, 4096)
    medium = FunnelConfig.from_preset("medium-base")
    assert medium.block_sizes == [6, 3, 3] and medium.block_repeats == [1, 2, 2]
    assert FunnelConfig.from_preset("small", num_labels=3).num_labels == 3
    with pytest.raises(ValueError, match="unknown preset 'huge'.*funnel-transformer/small"):
        FunnelConfig.from_preset("huge")


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        FunnelConfig.from_pretrained(tmp_path)
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        FunnelConfig.from_pretrained(tmp_path)
    bad.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type is 'bert', expected 'funnel'"):
        FunnelConfig.from_pretrained(tmp_path)
    bad.write_text(json.dumps({"model_type": "funnel", "block_sizes": []}))
    with pytest.raises(ValueError, match=r"config.json: FunnelConfig\.block_sizes"):
        FunnelConfig.from_pretrained(tmp_path)


def test_labels_follow_num_labels_and_label2id():
    assert FunnelConfig(num_labels=5).id2label == {i: f"LABEL_{i}" for i in range(5)}
    config = FunnelConfig(label2id={"yes": 1, "no": 0})
    assert config.id2label == {0: "no", 1: "yes"} and config.num_labels == 2
    config.update({"num_labels": 3})
    assert config.num_labels == 3
