"""Joint multi-task training through `Trainer`: every batch belongs to one task.

- `MultitaskBatchSampler` (sampling.py) decides which task each batch comes from and groups each task's examples by
  length.
- `MultitaskCollator` pads a batch with the stock collator of its task.
- `MultitaskTrainer` weighs each task's loss, logs the loss per task, switches the LoRA adapter to the batch's task,
  and scores each evaluation set on its task's metrics (`evaluation.py`), with a combined score to choose the best
  checkpoint.

What differs from task to task (collator, loss weight option, metrics) comes from the task table, `tasks.TASKS`.
"""

import dataclasses
import json
import logging
import os
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import gather_object
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import TrainerCallback
from transformers.trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    IntervalStrategy,
    SaveStrategy,
    get_last_checkpoint,
    sort_checkpoints,
)

from .atomic import atomic_contents, atomic_file, move_into_place, retire
from .build import is_decoder, is_fresh
from .data import EvalSet
from .evaluation import Predictions, SetResult, combined_score, metric_key, metric_keys, predict_rows, score_set
from .run_layout import RUN_ARGUMENTS, RunLayout
from .sampling import MultitaskBatchSampler, MultitaskDataset, Sampling
from .tasks import TASKS, is_lower_better

logger = logging.getLogger(__name__)

# the parts `create_optimizer` can give their own peak rate: the argument that sets it, and the log's name for the part
# (the fresh parts first: their twin groups come first in the optimizer, as a resumed checkpoint's state expects)
RATE_PARTS = {
    "fresh": ("fresh_learning_rate", "fresh parts"),
    "decoder": ("decoder_learning_rate", "decoder's pretrained layers"),
}


def only_cpu() -> bool:
    """Whether this machine has no accelerator torch can train on (CUDA, MPS, XPU)."""
    xpu = getattr(torch, "xpu", None)
    return not (torch.cuda.is_available() or torch.backends.mps.is_available() or (xpu and xpu.is_available()))


def cpu_has_native_bf16() -> bool:
    """Whether these CPU cores compute bfloat16 natively (AVX512-BF16 or AMX), which oneDNN, behind CPU autocast,
    needs to be fast."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass
class _MultitaskTrainingArguments(Seq2SeqTrainingArguments):
    task_sampling: Sampling = field(
        default="proportional",
        metadata={
            "help": "which task each batch comes from: 'proportional' to the number of batches (every example once "
            "per epoch), 'temperature' (p ∝ n^(1/T)) or 'round_robin'"
        },
    )
    sampling_temperature: float = field(default=2.0, metadata={"help": "T of temperature sampling"})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "'group_by_length' (batches of similar lengths, less padding) or 'random'"},
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "train into an output_dir that already holds a trained model"}
    )
    # Defaults of this project (the rest are Trainer's): sized so that `python train.py` on the demo data finishes
    # in minutes on a CPU; evaluate every epoch and keep the best checkpoint by the combined score.
    output_dir: str | None = field(
        default="outputs/multitask-bert", metadata={"help": "where the model folder is written"}
    )
    num_train_epochs: float = field(default=2.0, metadata={"help": "training epochs"})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "batch size per device"})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "evaluation batch size per device"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    fresh_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "peak learning rate of the parts a warm start leaves fresh (cross-attention, sentiment head, "
            "LM-head transform and bias), on the same schedule; default: learning_rate"
        },
    )
    decoder_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "peak learning rate of the decoder's pretrained layers (its embeddings, self-attention and "
            "feed-forward; the shared word embeddings keep learning_rate), on the same schedule; default: "
            "learning_rate"
        },
    )
    warmup_steps: float = field(default=0.1, metadata={"help": "warm-up steps, or a fraction of all steps if < 1"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "'no', 'steps' or 'epoch'"})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={"help": "'no', 'steps', 'epoch' or 'best'"})
    save_total_limit: int | None = field(default=1, metadata={"help": "checkpoints kept (the best one is kept too)"})
    load_best_model_at_end: bool | None = field(
        default=None,
        metadata={
            "help": "end with the best checkpoint's weights; by default on wherever the run evaluates and saves at "
            "the same points (the same eval and save strategy, or save_strategy best)"
        },
    )
    metric_for_best_model: str | None = field(default="combined", metadata={"help": "metric choosing the best"})
    logging_steps: float = field(default=5, metadata={"help": "log every N steps"})
    generation_num_beams: int | None = field(default=4, metadata={"help": "beams for evaluation translations"})
    generation_max_length: int | None = field(default=48, metadata={"help": "new tokens for evaluation translations"})
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bfloat16 mixed precision; by default on where a CUDA GPU supports it, off on CPU; on a machine "
            "without a GPU --bf16 true turns on autocast on the CPU (faster on CPUs with AMX)"
        },
    )
    report_to: None | str | list[str] = field(default="none", metadata={"help": "'tensorboard', 'none', ..."})

    def __post_init__(self):
        if self.load_best_model_at_end is None:
            # Trainer can only go back to the best checkpoint where one is saved at each evaluation: a run that does
            # not evaluate, or saves at other points, ends with its last weights instead of stopping on an error
            evaluation, saving = IntervalStrategy(self.eval_strategy), SaveStrategy(self.save_strategy)
            self.load_best_model_at_end = evaluation != IntervalStrategy.NO and (
                saving == SaveStrategy.BEST or saving.value == evaluation.value
            )
        metric = self.metric_for_best_model
        if self.greater_is_better is None and metric and is_lower_better(metric.rsplit("_", 1)[-1]):
            self.greater_is_better = False  # Trainer takes every name not ending in "loss" for higher-is-better
        if self.bf16 is None:
            self.bf16 = not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        elif self.bf16 and not self.use_cpu and only_cpu():
            # Trainer refuses bf16 without a GPU unless told to use the CPU: on a machine that has nothing else, the
            # CPU is what --bf16 true means (autocast; fast where the cores have AMX)
            self.use_cpu = True
        super().__post_init__()
        if self.bf16 and self.use_cpu and not cpu_has_native_bf16():
            # measured on 2 AVX2 cores: bf16 autocast ran under a quarter of fp32's steps (AMX cores: 1.4x fp32's)
            logger.warning(
                "--bf16 on a CPU without native bfloat16 (no AVX512-BF16 or AMX): autocast emulates it and trains "
                "several times slower than float32; pass --bf16 false on this machine"
            )
        if self.dataloader_drop_last:
            # the batch sampler cuts each task's rows into batches of its own: Trainer's drop_last has no batch to drop
            raise ValueError(
                "--dataloader_drop_last: every batch holds one task, and each task's last batch of an epoch may be "
                "short; the sampler keeps it. Leave --dataloader_drop_last out"
            )
        if self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters = True  # a sentiment batch leaves the decoder unused, and vice versa
        if self.task_sampling not in ("proportional", "temperature", "round_robin"):
            raise ValueError(
                f"task_sampling must be proportional, temperature or round_robin, got {self.task_sampling!r}"
            )
        for name, _ in RATE_PARTS.values():
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.sampling_temperature <= 0:
            raise ValueError(f"sampling_temperature must be positive, got {self.sampling_temperature}")
        for name in (f"{task}_loss_weight" for task in TASKS):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
            if getattr(self, name) == 0 and self.weight_decay > 0:
                # AdamW decays every weight that has a gradient, and a zero-weighted loss still gives the task's own
                # head a gradient (of zeros) on each of its batches: the head shrinks towards zero, nothing restores it
                logger.warning(
                    "--%s 0 with --weight_decay %g: AdamW's decay still shrinks that task's head on each of its "
                    "batches; pass --weight_decay 0, or leave the task's training data out",
                    name,
                    self.weight_decay,
                )
        for name in ("generation_num_beams", "generation_max_length"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.train_sampling_strategy not in ("group_by_length", "random"):
            raise ValueError(
                f"train_sampling_strategy must be 'group_by_length' or 'random' for multi-task training, "
                f"got {self.train_sampling_strategy!r}"
            )

    def loss_weight(self, task: str) -> float:
        return getattr(self, f"{task}_loss_weight")


# Trainer's arguments, this project's, and one `--<task>_loss_weight` per task of the table.
MultitaskTrainingArguments = dataclasses.make_dataclass(
    "MultitaskTrainingArguments",
    [
        (f"{task}_loss_weight", float, field(default=1.0, metadata={"help": f"weight of the {task} loss"}))
        for task in TASKS
    ],
    bases=(_MultitaskTrainingArguments,),
    namespace={"__module__": __name__},
)


class MultitaskCollator:
    """Pads a one-task batch with that task's stock collator and says which task it is."""

    def __init__(self, tokenizer, model, pad_to_multiple_of: int | None = None):
        self.collators = {name: task.collator(tokenizer, model, pad_to_multiple_of) for name, task in TASKS.items()}

    def __call__(self, features: list[dict]) -> dict:
        tasks = {feature["task"] for feature in features}
        if len(tasks) != 1:
            raise ValueError(f"a batch mixes tasks {sorted(tasks)}: use MultitaskBatchSampler")
        task = tasks.pop()
        batch = self.collators[task]([{k: v for k, v in f.items() if k != "task"} for f in features])
        batch["task"] = task
        return batch


class _SamplerEpoch(TrainerCallback):
    """Tells the batch sampler which epoch starts, also when a resumed run skips into the middle of one (the
    dataloader wrapper that skips batches does not forward `set_epoch`)."""

    def __init__(self, trainer: "MultitaskTrainer"):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer.train_batch_sampler is not None:
            self.trainer.train_batch_sampler.set_epoch(int(state.epoch or 0))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # the base's files are never rewritten in place: a hard link is a safe copy
    except OSError:
        shutil.copy2(source, target)


def resolve_checkpoint(value, output_dir: str) -> str | None:
    """`--resume_from_checkpoint` as Trainer reads it: a checkpoint folder, or true for the latest in `output_dir`."""
    if value is None or value is False or str(value).lower() in ("", "false"):
        return None
    if value is not True and str(value).lower() != "true":
        return str(value)
    last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if last is None:
        raise FileNotFoundError(
            f"--resume_from_checkpoint true: {output_dir} holds no checkpoint-N folder to resume from; give a "
            "checkpoint's path, or start a new run without --resume_from_checkpoint"
        )
    return last


def check_checkpoint(folder: str, world_size: int = 1) -> None:
    """Raise unless `folder` holds, intact, every state a resume restores, naming the first file that is missing or
    damaged. Trainer itself starts a fresh optimizer and schedule when optimizer.pt or scheduler.pt is missing, and
    fresh random states without an RNG file: a resumed run that silently trains differently."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"--resume_from_checkpoint {folder}: no such folder; give a checkpoint-N folder of an earlier run, or true "
            "for the latest one in --output_dir"
        )
    rng = ["rng_state.pth"] if world_size <= 1 else [f"rng_state_{i}.pth" for i in range(world_size)]
    weights = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*.safetensors"))
    for name in ["trainer_state.json", "optimizer.pt", "scheduler.pt", *rng, *(weights or ["model.safetensors"])]:
        problem = _file_problem(os.path.join(folder, name))
        if problem:
            raise ValueError(f"cannot resume from {folder}: {name} {problem}. {_resume_remedy(folder, name)}")


def _resume_remedy(folder: str, name: str) -> str:
    written = sorted(p.name for p in Path(folder).glob("rng_state*.pth"))
    if name.startswith("rng_state") and written:  # written by another number of processes than this run's
        return f"It holds {', '.join(written)}: resume with as many processes as wrote those"
    return "Resume from another checkpoint that has all its files, or start over with --overwrite_output_dir"


def _file_problem(path: str) -> str | None:
    """What is wrong with a checkpoint file, or None: missing, or not readable to its end."""
    if not os.path.isfile(path):
        return "is missing"
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                json.load(f)["global_step"]
        elif path.endswith(".safetensors"):
            _check_safetensors(path)
        else:  # torch.save writes a zip archive whose members carry checksums
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
            if damaged:
                raise ValueError(f"member {damaged} fails its checksum")
    except (OSError, ValueError, KeyError, TypeError, struct.error, zipfile.BadZipFile) as err:
        return f"is damaged or cut short ({type(err).__name__}: {err})"
    return None


def _check_safetensors(path: str) -> None:
    """A safetensors file is an 8-byte header length, a JSON header and the tensors' bytes, exactly to the end."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if os.path.getsize(path) != 8 + length + end:
        raise ValueError(f"{os.path.getsize(path)} bytes where its header says {8 + length + end}")


class MultitaskTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` over a `MultitaskDataset`: one task per batch, per-task losses, weights, adapters and metrics.

    `eval_dataset` is a dict name -> `data.EvalSet` (tokenized rows and their references); each set is scored on its
    task's metrics.
    """

    def __init__(self, *args, lora_base: str | None = None, run_arguments: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lora_base = lora_base  # a LoRA run's frozen base model, saved aside; the final folder takes it in
        self.run_arguments = run_arguments  # saved in each checkpoint: what a resume must share with this run
        self._staging: str | None = None  # where Trainer writes the checkpoint being saved
        self._run_metrics: dict[str, dict[str, float]] = {}  # what save_metrics wrote in this run, per split
        # Each batch's loss is the mean over its own task (a sentence for sentiment, a token for translation); the
        # Trainer's token-count normalisation across a mixed accumulation window would mix those units.
        self.model_accepts_loss_kwargs = False
        self.train_batch_sampler: MultitaskBatchSampler | None = None
        # (sum, count) of each task's training losses since the last log, kept on the loss's device: reading a loss
        # every step would make the host wait for the device
        self._task_loss = {task: torch.zeros(2) for task in TASKS}
        self.add_callback(_SamplerEpoch(self))
        # Trainer's label smoother works on `outputs.logits`, which a sentiment batch does not have and which the
        # translation loss never materialises over padding; the model smooths its translation loss itself
        # (`config.label_smoothing`, saved with it), so --label_smoothing_factor is handed to it: 0 too, or a model
        # saved with smoothing would go on smoothing whatever this run asks.
        self.model.config.label_smoothing = self.args.label_smoothing_factor
        self.label_smoother = None

    @property
    def uses_adapters(self) -> bool:
        return hasattr(self.model, "peft_config")

    def make_batch_sampler(self) -> MultitaskBatchSampler:
        if not isinstance(self.train_dataset, MultitaskDataset):
            raise ValueError("MultitaskTrainer trains on a MultitaskDataset")
        return MultitaskBatchSampler(
            self.train_dataset,
            batch_size=self._train_batch_size,
            sampling=self.args.task_sampling,
            temperature=self.args.sampling_temperature,
            group_by_length=self.args.train_sampling_strategy == "group_by_length",
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def get_train_dataloader(self) -> DataLoader:
        self.train_batch_sampler = self.make_batch_sampler()
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.train_batch_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
            # what DataLoader takes only with worker processes
            prefetch_factor=self.args.dataloader_prefetch_factor if self.args.dataloader_num_workers else None,
            persistent_workers=self.args.dataloader_persistent_workers and self.args.dataloader_num_workers > 0,
        )
        return self.accelerator.prepare(loader)

    def create_optimizer(self, model=None):
        """Trainer's optimizer; with `fresh_learning_rate` the fresh parts (`build.FRESH_PARTS`), and with
        `decoder_learning_rate` the decoder's pretrained layers, move out of each parameter group into a twin group at
        their rate (the fresh parts first: the decoder's cross-attention is fresh). Before the scheduler exists: it
        scales every group's rate."""
        rates = {part: getattr(self.args, name) for part, (name, _) in RATE_PARTS.items()}
        rates = {part: rate for part, rate in rates.items() if rate is not None}
        split = self.optimizer is None and rates
        optimizer = super().create_optimizer(model)
        if split:
            model = self.model if model is None else model
            names = {id(p): name for name, p in model.named_parameters() if p.requires_grad}
            part_of = {
                pid: "fresh" if is_fresh(name) else "decoder" if is_decoder(name) else None
                for pid, name in names.items()
            }
            for group in list(optimizer.param_groups):
                for part, rate in rates.items():
                    moved = [p for p in group["params"] if part_of.get(id(p)) == part]
                    if moved:
                        group["params"] = [p for p in group["params"] if part_of.get(id(p)) != part]
                        settings = {k: v for k, v in group.items() if k != "params"}
                        optimizer.add_param_group({**settings, "params": moved, "lr": rate})
            logger.info(
                "Learning rate %g; %s",
                self.args.learning_rate,
                "; ".join(
                    f"{RATE_PARTS[part][1]} ({sum(1 for p in part_of.values() if p == part)} tensors) {rate:g}"
                    for part, rate in rates.items()
                ),
            )
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task = inputs.pop("task")
        if self.uses_adapters:
            self.model.set_adapter(task)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if model.training:
            step = torch.stack([loss.detach().float(), torch.ones((), device=loss.device)])
            self._task_loss[task] = self._task_loss[task].to(loss.device) + step
        loss = loss * self.args.loss_weight(task)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add each task's mean loss since the last one, over all processes
            totals = torch.stack([self._task_loss[t].to(self.args.device) for t in TASKS])
            if self.accelerator.num_processes > 1:
                totals = self.accelerator.reduce(totals, reduction="sum")
            for task, (total, count) in zip(TASKS, totals.tolist()):
                if count:
                    logs[f"loss_{task}"] = round(total / count, 4)
                self._task_loss[task].zero_()
        super().log(logs, start_time)

    # ---- checkpoints of a LoRA run: one adapter folder per task --------------------------------------------------

    def _load_task_adapters(self, checkpoint: str) -> None:
        for task in self.model.peft_config:
            weights = load_file(RunLayout(checkpoint).adapter_weights(task))
            set_peft_model_state_dict(self.model, weights, adapter_name=task)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        if not self.uses_adapters:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._load_task_adapters(resume_from_checkpoint)

    def _init_training_state(
        self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
    ):
        epochs_trained, steps_in_epoch = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if resume_from_checkpoint is not None:
            self._anchor_best_checkpoint(resume_from_checkpoint)
        # A run stopped after its last checkpoint (in the final evaluation or save) and resumed from it: Trainer checks
        # max_steps only after a step, so it would train step max_steps + 1 (and evaluate and save it). No epoch left
        # to run takes it straight to the end of training: best model, evaluation, save.
        if self.state.global_step >= max_steps:
            return num_train_epochs, 0
        return epochs_trained, steps_in_epoch

    def _anchor_best_checkpoint(self, resume_from_checkpoint: str) -> None:
        """The best checkpoint a resumed run recorded, found in this run's folder. Its state names it by the path the
        run had then: moved or copied to another disk, or resumed with the folder spelt another way (relative,
        absolute), that path is gone or differs, and Trainer forgets the best checkpoint (the end model is then the
        best since the resume, not the best) or fails to protect it from rotation, deleting it. The folder of that
        name in this run's output_dir is the same checkpoint."""
        with open(os.path.join(resume_from_checkpoint, TRAINER_STATE_NAME), encoding="utf-8") as f:
            recorded = json.load(f).get("best_model_checkpoint")
        if recorded is None:
            return
        here = os.path.join(self._get_output_dir(trial=None), os.path.basename(os.path.normpath(recorded)))
        if os.path.isdir(here) and here != self.state.best_model_checkpoint:
            logger.info("Best checkpoint so far: %s (recorded as %s)", here, recorded)
            self.state.best_model_checkpoint = here

    def _load_best_model(self):
        if not self.uses_adapters:
            super()._load_best_model()
        else:
            logger.info(
                "Loading the best adapters from %s (score %s)", self.state.best_model_checkpoint, self.state.best_metric
            )
            self._load_task_adapters(self.state.best_model_checkpoint)
        # Trainer deletes the checkpoints other than the best right after this (save_total_limit 1) with a plain
        # rmtree, which a kill would leave half-deleted under its name; retired here first, it finds none left.
        if self.args.save_total_limit == 1 and self.args.should_save:
            for checkpoint in sort_checkpoints(self._get_output_dir(trial=None)):
                if not os.path.samefile(checkpoint, self.state.best_model_checkpoint):
                    retire(checkpoint)

    # ---- saving: every folder and file complete under its final name -------------------------------------------

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The final model (with a LoRA run's base) is written aside and moved in with config.json last: a folder
        with a config.json is complete, a kill mid-save leaves none. Checkpoints are staged whole by
        `_save_checkpoint`."""
        if _internal_call or not self.args.should_save:
            return super().save_model(output_dir, _internal_call)
        with atomic_contents(output_dir or self.args.output_dir) as staging:
            if self.lora_base:
                shutil.copytree(
                    self.lora_base,
                    staging,
                    ignore=shutil.ignore_patterns(".*"),
                    dirs_exist_ok=True,
                    copy_function=_link_or_copy,
                )
            super().save_model(str(staging), _internal_call)

    def _get_output_dir(self, trial) -> str:
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Trainer writes checkpoint-N file by file under its final name; here it writes it into a hidden staging
        folder, renamed when complete: a kill mid-save leaves no half checkpoint that a resume or a loader would
        take."""
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self._staging = os.path.join(run_dir, f".{name}.partial")  # one name: every process writes its RNG state in
        if self.args.should_save:
            shutil.rmtree(self._staging, ignore_errors=True)  # left by a run killed at this step
        self.accelerator.wait_for_everyone()
        try:
            super()._save_checkpoint(model, trial)
        finally:
            staging, self._staging = self._staging, None
        self.accelerator.wait_for_everyone()
        staged, final = os.path.join(staging, name), os.path.join(run_dir, name)
        if self.state.best_model_checkpoint == staged:  # Trainer found the best checkpoint in the staging folder
            self.state.best_model_checkpoint = final
        if self.args.should_save:
            self._write_state(os.path.join(staged, "trainer_state.json"))  # with the best checkpoint's final path
            if self.run_arguments is not None:
                with open(os.path.join(staged, RUN_ARGUMENTS), "w", encoding="utf-8") as f:  # staged: whole or absent
                    json.dump(self.run_arguments, f, indent=2, sort_keys=True)
            move_into_place(staged, final)
            shutil.rmtree(staging, ignore_errors=True)
            self._rotate(run_dir)
        self.accelerator.wait_for_everyone()

    def _rotate(self, run_dir: str) -> None:
        """Trainer's rotation (keep the newest, the best and `save_total_limit` in all), deleting atomically."""
        limit = self.args.save_total_limit
        checkpoints = sort_checkpoints(run_dir, use_mtime=True)
        if not limit or limit <= 0 or len(checkpoints) <= limit:
            return
        protected = {checkpoints[-1]}
        if self.state.best_model_checkpoint is not None:
            protected.add(str(Path(self.state.best_model_checkpoint)))
        surplus = len(checkpoints) - max(limit, len(protected))
        for checkpoint in [c for c in checkpoints if c not in protected][:surplus]:
            retire(checkpoint)

    def _write_state(self, path: str) -> None:
        with atomic_file(path) as f:
            f.write(json.dumps(dataclasses.asdict(self.state), indent=2, sort_keys=True) + "\n")

    def save_state(self) -> None:
        if self.is_world_process_zero():
            self._write_state(os.path.join(self.args.output_dir, "trainer_state.json"))

    def save_metrics(self, split, metrics, combined=True) -> None:
        """Trainer's `<split>_results.json` and `all_results.json`, each written whole; `all_results.json` holds this
        run's results only. Trainer merges them into the file an earlier run in the folder left (a run with
        --overwrite_output_dir), which would keep that run's scores of sets this run does not have."""
        if not self.is_world_process_zero():
            return
        out = Path(self.args.output_dir)
        with atomic_file(out / f"{split}_results.json") as f:
            json.dump(metrics, f, indent=4, sort_keys=True)
        self._run_metrics[split] = metrics
        if combined:
            with atomic_file(out / "all_results.json") as f:
                merged = {k: v for saved in self._run_metrics.values() for k, v in saved.items()}
                json.dump(merged, f, indent=4, sort_keys=True)

    # ---- evaluation --------------------------------------------------------------------------------------------

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        """Score every validation set (`eval_dataset`: a dict name -> `EvalSet`) on its task's metrics, named
        `eval_<set>_<metric>`, and the combined score (`eval_combined`) that chooses the best checkpoint."""
        sets = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(sets, dict):
            raise ValueError("MultitaskTrainer evaluates a dict name -> EvalSet (data.load_task_data makes them)")
        return self.log_results(self.score_sets(list(sets.values()), **gen_kwargs), metric_key_prefix)

    def log_results(self, results: list[SetResult], metric_key_prefix: str = "eval") -> dict[str, float]:
        """Validation results as Trainer's metrics (with the combined score), logged and told to the callbacks."""
        metrics = metric_keys(results, metric_key_prefix)
        metrics[metric_key(metric_key_prefix, "combined")] = combined_score(results)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def score_sets(self, sets: list[EvalSet], **gen_kwargs) -> list[SetResult]:
        """Each set's result on its task's metrics (`evaluation.py`); every process predicts a share of the rows."""
        if not all(isinstance(s, EvalSet) for s in sets):
            raise ValueError("MultitaskTrainer evaluates EvalSets (data.load_task_data makes them)")
        model = self.model
        was_training = model.training
        model.eval()
        results = []
        for eval_set in sets:
            if self.uses_adapters:
                model.set_adapter(eval_set.task)
            results.append(score_set(eval_set, self._predict(eval_set, dict(gen_kwargs))))
        model.train(was_training)
        return results

    def generation_settings(self, gen_kwargs: dict) -> dict:
        """Beam search settings: the call's, else the training arguments' `generation_*`."""
        num_beams = gen_kwargs.pop("num_beams", self.args.generation_num_beams)
        max_new_tokens = gen_kwargs.pop("max_new_tokens", self.args.generation_max_length)
        given = (("num_beams", num_beams), ("max_new_tokens", max_new_tokens))
        return {**{k: v for k, v in given if v is not None}, **gen_kwargs}

    def _predict(self, eval_set: EvalSet, gen_kwargs: dict) -> Predictions:
        """This process's share of the rows predicted, and the predictions of all processes gathered."""
        rows = list(range(self.accelerator.process_index, len(eval_set.dataset), self.accelerator.num_processes))
        size = self.args.per_device_eval_batch_size
        show = self.is_world_process_zero() and not self.args.disable_tqdm
        with tqdm(total=len(rows), desc=f"Evaluating {eval_set.name}", disable=not show, leave=False) as bar:
            mine = predict_rows(
                self.model,
                self.processing_class,
                eval_set,
                self.data_collator.collators[eval_set.task],
                batch_size=size,
                device=self.args.device,
                generation=self.generation_settings(gen_kwargs) if TASKS[eval_set.task].generates else {},
                rows=rows,
                progress=bar.update,
            )
        return Predictions.merged(gather_object([mine]))
