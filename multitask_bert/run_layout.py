"""The folder of a training run, and of each of its checkpoints: what lies where.

    <output_dir>/config.json, model.safetensors, ...   the model (a LoRA run: the frozen base its adapters apply to)
    <output_dir>/<task>/adapter_model.safetensors      a LoRA run: one adapter per task (PEFT's folder per adapter)
    <output_dir>/merged-<task>/                        a LoRA run: a plain model with that task's adapter merged in
    <output_dir>/.lora-base.partial/                   a LoRA run in progress: its base, saved before training
    <output_dir>/checkpoint-N/                         Trainer's checkpoints, laid out as the run's folder
    <output_dir>/checkpoint-N/run_arguments.json       the options that fix the run's model and batches (a resume
                                                       is checked against them)

Every save and load of a run's folder goes through `RunLayout`.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from huggingface_hub.errors import HFValidationError

from .tasks import TASKS

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MODEL_CONFIG = "config.json"  # written last: a folder with it holds a complete model
RUN_ARGUMENTS = "run_arguments.json"  # in a checkpoint: what a resume must share with the run that saved it
MODEL_TYPE = "multitask-bert"  # the config's model_type (configuration_multitask.MultitaskBertConfig)
T = TypeVar("T")


@dataclass(frozen=True)
class RunLayout:
    folder: Path

    def __init__(self, folder: str | Path):
        object.__setattr__(self, "folder", Path(folder))

    @property
    def model_config(self) -> Path:
        return self.folder / MODEL_CONFIG

    @property
    def lora_base(self) -> Path:
        """Where a LoRA run keeps its frozen base until the final save takes it in."""
        return self.folder / ".lora-base.partial"

    def adapter(self, task: str) -> Path:
        """The folder of one task's LoRA adapter."""
        return self.folder / task

    def adapter_weights(self, task: str) -> Path:
        return self.adapter(task) / ADAPTER_WEIGHTS

    def merged(self, task: str) -> Path:
        """A LoRA run's plain export with one task's adapter merged in."""
        return self.folder / f"merged-{task}"

    def adapters(self) -> list[str]:
        """The tasks whose LoRA adapter the folder holds."""
        return [task for task in TASKS if (self.adapter(task) / ADAPTER_CONFIG).is_file()]

    def run_outputs(self) -> list[Path]:
        """What a run leaves here that a later run in the same folder may not write again, and would leave beside its
        own model as if it were its own: checkpoints (which a resume would pick), merged exports, the validation
        scores and the training curves."""
        names = ["eval_results.json", "training_curves.png", *(self.merged(task).name for task in TASKS)]
        found = [self.folder / name for name in names if (self.folder / name).exists()]
        checkpoints = [
            p for p in self.folder.glob("checkpoint-*") if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit()
        ]
        return sorted(checkpoints) + found

    def holds_model(self) -> bool:
        """Whether a run finished here: its model, or (a LoRA run) an adapter folder of a task."""
        return self.model_config.is_file() or any(self.adapter(task).is_dir() for task in TASKS)


def check_plain_model(model: str, command: str) -> None:
    """`model` (a folder or a Hub id) is no LoRA run's folder: AutoModel would load its base alone, without the
    adapters, and `command` would run that model silently."""
    adapters = RunLayout(model).adapters()
    if adapters:
        raise ValueError(
            f"{model} holds LoRA adapters ({', '.join(adapters)}): {command} runs plain models, and would load the "
            "base without them; give it the merged-<task> folder that train.py --merge_adapter writes"
        )


def is_local(model: str) -> bool:
    """Whether `model` names a path here (one that exists, or any absolute path) rather than a Hub id."""
    path = Path(model).expanduser()
    return path.is_absolute() or path.exists()


def check_model(model: str, command: str, revision: str | None = None, revision_option: str = "--revision") -> None:
    """Before any weight loads: `model` given by path is a folder holding a saved multi-task model, with no revision
    (a revision pins a Hub commit: beside a folder it would be ignored, and recorded as if it pinned something), and
    no LoRA run's folder. A Hub id is checked by loading it (`load_named` words a failure)."""
    if not is_local(model):
        return
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{model}: no such folder (a model is a saved folder or a Hub id)")
    if revision is not None:
        raise ValueError(f"{revision_option} pins a Hub commit, and {model} is a local folder: drop {revision_option}")
    check_plain_model(model, command)
    config = RunLayout(path).model_config
    if not config.is_file():
        raise FileNotFoundError(f"{model} holds no saved model (no {MODEL_CONFIG})")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as err:
        raise ValueError(f"{config} is not a model's config (not a JSON object: {err})") from err
    if model_type != MODEL_TYPE:
        raise ValueError(f"{model} is not a multitask-bert model (its {MODEL_CONFIG} is a {model_type} model's)")


def load_named(load: Callable[[], T], model: str, option: str = "--model", hint: str = "") -> T:
    """`load()`, which loads `model`. Where `model` is no path here and the Hub did not give it (no such repository,
    no network, not a repo id), its error speaks of connections or repo ids only: the error says both where it was
    looked for, with the Hub's first line (the rest is retries and tracebacks), and `hint`."""
    try:
        return load()
    except (OSError, HFValidationError) as err:
        if is_local(model):  # a folder check_model passed: its own error says what is wrong in it
            raise
        message = f"{option} {model} is not a folder here, and loading it from the Hub failed ({first_line(err)})"
        raise OSError(message + hint) from err


def first_line(error: Exception) -> str:
    """A Hub error's first line: the rest is retries, URLs and tracebacks."""
    return str(error).partition("\n")[0]
