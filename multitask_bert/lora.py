"""One LoRA adapter per task (PEFT), keyed by task name and trained jointly: each batch activates its task's adapter.

Which modules each task's adapter adapts and which it trains in full are fields of its record in `tasks.TASKS`
(`lora_targets`, `fully_trained`). The word embeddings (shared by the tasks and the output layer) stay frozen.
"""

import logging
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModel

from .run_layout import RunLayout
from .tasks import TASKS

logger = logging.getLogger(__name__)


def add_task_adapters(model, r: int = 16, alpha: int = 32, dropout: float = 0.05) -> PeftModel:
    """Wrap `model` with one LoRA adapter per task; all adapters' weights are trainable (the optimizer holds them
    all; an inactive adapter gets no gradient)."""
    peft_model = None
    for task in TASKS.values():
        config = LoraConfig(
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=task.lora_targets,
            modules_to_save=list(task.fully_trained),
        )
        if peft_model is None:
            peft_model = get_peft_model(model, config, adapter_name=task.name)
        else:
            peft_model.add_adapter(task.name, config)
    for name, parameter in peft_model.named_parameters():
        if any(f".{task}." in name for task in TASKS):
            parameter.requires_grad_(True)
    return peft_model


def check_same_base(model, checkpoint: str) -> None:
    """A LoRA checkpoint holds adapters and heads only; the base they were trained on lies in its run's folder (the
    base saved aside while the run is unfinished, the run's model once it has finished). Resuming on another base (a
    changed --base_model, revision, seed or trim, or a Hub model that changed since) would train the adapters on, and
    save them over, a model they were not trained for: refused, naming the weights that differ."""
    run = RunLayout(Path(checkpoint).parent)
    saved = next(
        (f / "model.safetensors" for f in (run.lora_base, run.folder) if (f / "model.safetensors").is_file()), None
    )
    if saved is None:  # the run's base is gone (a checkpoint copied elsewhere): nothing to compare with
        logger.warning("%s: no saved base beside it to compare this run's base with", checkpoint)
        return
    weights, state = load_file(saved), model.state_dict()
    differ = [name for name, w in weights.items() if name not in state or not torch.equal(state[name].cpu(), w)]
    if differ:
        raise ValueError(
            f"{checkpoint} holds LoRA adapters trained on the base saved in {saved.parent}, and this run's base "
            f"differs from it ({len(differ)} tensor(s): {', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''}): "
            "resume with that run's --base_model or --model_name_or_path, --model_revision, --seed and --trim_vocab"
        )


def trainable_parameters(peft_model: PeftModel) -> dict[str, int]:
    """Trainable parameters of each task's adapter (LoRA matrices and fully trained modules), and the total."""
    counts = {task: 0 for task in TASKS}
    for name, parameter in peft_model.named_parameters():
        for task in counts:
            if f".{task}." in name:
                counts[task] += parameter.numel()
    counts["all parameters"] = sum(p.numel() for p in peft_model.parameters())
    return counts


def load_task_adapters(path: str, **from_pretrained_kwargs) -> PeftModel:
    """A saved LoRA run: the base model at `path` with each task's adapter from its folder (`run_layout.py`)."""
    base = AutoModel.from_pretrained(path, trust_remote_code=True, **from_pretrained_kwargs)
    run = RunLayout(path)
    first, *others = TASKS
    model = PeftModel.from_pretrained(base, str(run.adapter(first)), adapter_name=first)
    for task in others:
        model.load_adapter(str(run.adapter(task)), adapter_name=task)
    return model.eval()


def merge_task_adapter(peft_model: PeftModel, task: str):
    """A plain multi-task model with `task`'s adapter merged in and its fully trained modules in place; the other
    task's modules are the base's. For a single-task export."""
    peft_model.set_adapter(task)
    return peft_model.merge_and_unload(adapter_names=[task])
