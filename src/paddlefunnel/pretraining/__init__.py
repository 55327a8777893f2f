"""Pretraining: corpus preparation (`prepare.py`, `shards.py`, `text.py`, `builtin.py`) and the objectives / runs.

`prepare_corpus` turns raw text into memory-mapped shards of packed examples; `PreparedCorpus` opens such a data
directory (verifying it) and serves batches of rows to the Trainer. `pretrain` trains on it with MLM or ELECTRA
(`masking.py` masks dynamically, `models.py` holds the objectives, `run.py` the run).
"""

from .prepare import prepare_corpus
from .shards import CorpusSplit, PreparedCorpus, tokenizer_fingerprint
from .masking import MaskingSpec, mask_batch
from .models import ElectraPretrainingModel, MaskedLMPretrainingModel, generator_config
from .run import ObjectiveOptions, demo_pretraining, pretrain

__all__ = ["CorpusSplit", "PreparedCorpus", "prepare_corpus", "tokenizer_fingerprint"]
__all__ += ["ElectraPretrainingModel", "MaskedLMPretrainingModel", "MaskingSpec", "ObjectiveOptions",
            "demo_pretraining", "generator_config", "mask_batch", "pretrain"]
