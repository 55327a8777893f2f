"""Raw data readers (GLUE, SQuAD, the user's CSV/TSV/JSONL) and the built-in synthetic data sets.

Everything here stops at raw examples; tokenisation and feature building live elsewhere.
"""

from ..errors import DataFormatError
from ._common import Example, ExampleList, SkippedRow
from .conll import TaggedSentence, read_conll, read_tagged, tag_label_list
from .glue import GLUE_TASKS, GlueTaskSpec, glue_task, read_glue, write_glue_predictions
from .multiple_choice import ChoiceColumns, ChoiceExample, read_choice_table, read_race
from .squad import (
    SquadDataset,
    SquadExample,
    SquadReadReport,
    load_squad_dataset_for_eval,
    read_na_probs,
    read_squad,
    read_squad_predictions,
)
from .synthetic import SYNTHETIC_GLUE_TASK, demo_corpus, write_synthetic_glue, write_synthetic_squad
from .synthetic_conll import write_synthetic_conll
from .synthetic_race import write_synthetic_race
from .tabular import read_tabular

__all__ = [
    "ChoiceColumns",
    "ChoiceExample",
    "DataFormatError",
    "Example",
    "ExampleList",
    "GLUE_TASKS",
    "GlueTaskSpec",
    "SYNTHETIC_GLUE_TASK",
    "SkippedRow",
    "SquadDataset",
    "SquadExample",
    "SquadReadReport",
    "TaggedSentence",
    "demo_corpus",
    "glue_task",
    "load_squad_dataset_for_eval",
    "read_choice_table",
    "read_conll",
    "read_glue",
    "read_na_probs",
    "read_race",
    "read_squad",
    "read_squad_predictions",
    "read_tabular",
    "read_tagged",
    "tag_label_list",
    "write_glue_predictions",
    "write_synthetic_glue",
    "write_synthetic_squad",
    "write_synthetic_conll",
    "write_synthetic_race",
]
