"""One LoRA adapter per task (PEFT), keyed by task name and trained jointly: each batch activates its task's adapter.

- "sentiment": LoRA on the encoder's self-attention; the classifier trained in full.
- "translation": LoRA on the encoder's and the decoder's self-attention; the cross-attention (which starts from
  scratch, so a low-rank update of random weights would not do) and the LM-head transform trained in full.

The word embeddings (shared by both tasks and the output layer) stay frozen.
"""

import logging
import os

from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModel

logger = logging.getLogger(__name__)

ADAPTER_TARGETS = {
    "sentiment": r"encoder\.encoder\.layer\.\d+\.attention\.self\.(query|key|value)",
    "translation": r"(encoder|decoder)\.encoder\.layer\.\d+\.attention\.self\.(query|key|value)",
}
FULLY_TRAINED = {"sentiment": ["classifier"], "translation": ["crossattention", "lm_head.predictions.transform"]}


def add_task_adapters(model, r: int = 16, alpha: int = 32, dropout: float = 0.05) -> PeftModel:
    """Wrap `model` with one LoRA adapter per task; all adapters' weights are trainable (the optimizer holds them
    all; an inactive adapter gets no gradient)."""
    peft_model = None
    for task, target in ADAPTER_TARGETS.items():
        config = LoraConfig(
            r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target, modules_to_save=FULLY_TRAINED[task]
        )
        if peft_model is None:
            peft_model = get_peft_model(model, config, adapter_name=task)
        else:
            peft_model.add_adapter(task, config)
    for name, parameter in peft_model.named_parameters():
        if any(f".{task}." in name for task in ADAPTER_TARGETS):
            parameter.requires_grad_(True)
    return peft_model


def trainable_parameters(peft_model: PeftModel) -> dict[str, int]:
    """Trainable parameters of each task's adapter (LoRA matrices and fully trained modules), and the total."""
    counts = {task: 0 for task in ADAPTER_TARGETS}
    for name, parameter in peft_model.named_parameters():
        for task in counts:
            if f".{task}." in name:
                counts[task] += parameter.numel()
    counts["all parameters"] = sum(p.numel() for p in peft_model.parameters())
    return counts


def load_task_adapters(path: str, **from_pretrained_kwargs) -> PeftModel:
    """A saved LoRA run: the base model at `path` with its adapters from `path/sentiment` and `path/translation`."""
    base = AutoModel.from_pretrained(path, trust_remote_code=True, **from_pretrained_kwargs)
    tasks = list(ADAPTER_TARGETS)
    model = PeftModel.from_pretrained(base, os.path.join(path, tasks[0]), adapter_name=tasks[0])
    for task in tasks[1:]:
        model.load_adapter(os.path.join(path, task), adapter_name=task)
    return model.eval()


def merge_task_adapter(peft_model: PeftModel, task: str):
    """A plain multi-task model with `task`'s adapter merged in and its fully trained modules in place; the other
    task's modules are the base's. For a single-task export."""
    peft_model.set_adapter(task)
    return peft_model.merge_and_unload(adapter_names=[task])
