"""Checkpoints: file formats (safetensors, .pdparams, PyTorch .bin), the HuggingFace <-> Paddle mapping,
loading into / saving from a model, and conversion between layouts.

Never imports `modeling/`: model classes pass themselves in (`load_pretrained(cls, ...)`), which keeps the
dependency one-way (modeling -> checkpoint). A new weights format goes into `formats.py`.
"""

from .convert import convert_checkpoint
from .formats import (
    HF_LAYOUT,
    PADDLE_LAYOUT,
    Checkpoint,
    read_checkpoint,
    read_safetensors,
    save_pdparams,
    write_safetensors,
)
from .loading import LoadingInfo, load_pretrained, load_state_into, save_pretrained
from .mapping import linear_weight_names, to_hf_state, to_paddle_state

__all__ = ["HF_LAYOUT", "PADDLE_LAYOUT", "Checkpoint", "LoadingInfo", "convert_checkpoint", "linear_weight_names",
           "load_pretrained", "load_state_into", "read_checkpoint", "read_safetensors", "save_pdparams",
           "save_pretrained", "to_hf_state", "to_paddle_state", "write_safetensors"]
