"""Main job: fine-tune the shared BERT on sentiment and English→Marathi translation at once, through `Trainer`.

    python train.py                                  # embedded base weights and the shipped demo data, offline
    python train.py config.json                      # all arguments from a JSON or YAML file
    torchrun --nproc_per_node 2 train.py ...          # several processes (DDP); or accelerate launch
    python train.py --lora --merge_adapter translation  # one LoRA adapter per task, and a merged translation export

It evaluates both tasks during and after training, keeps the best checkpoint by the combined score, saves a
Hub-ready folder with its model card, prints a table of results and can push the folder to the Hub.
"""

import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

import datasets
import transformers
import yaml
from huggingface_hub import HfApi
from transformers import AutoModel, AutoTokenizer, HfArgumentParser, set_seed
from transformers.trainer_utils import get_last_checkpoint

from multitask_bert import configure_logging
from multitask_bert.atomic import final_path, retire
from multitask_bert.build import EMBEDDED_BASE, build_multitask_model, check_lengths, check_tokenizer, save_model
from multitask_bert.card import (
    record_widget_outputs,
    trained_on_demo,
    training_data,
    training_procedure,
    write_model_card,
)
from multitask_bert.curves import plot_run
from multitask_bert.data import DataArguments, TaskData, read_task_data, tokenize_task_data
from multitask_bert.evaluation import SetResult, metric_key, metric_keys, signatures
from multitask_bert.lora import add_task_adapters, check_same_base, merge_task_adapter, trainable_parameters
from multitask_bert.run_layout import RUN_ARGUMENTS, RunLayout, check_model, first_line, is_local, load_named
from multitask_bert.sampling import MultitaskDataset, task_shares
from multitask_bert.space import gradio_version, push_space, write_model_requirements, write_space
from multitask_bert.tasks import TASKS, untrained_tasks
from multitask_bert.trainer import (
    MultitaskCollator,
    MultitaskTrainer,
    MultitaskTrainingArguments,
    check_checkpoint,
    resolve_checkpoint,
)
from multitask_bert.trim_vocab import pieces_per_sentence, trim_vocabulary

logger = logging.getLogger("multitask_bert.train")  # under the project's one logger


SHAPING = ("base_model", "decoder_layers", "classifier_pooling")  # what a fresh model is built with


@dataclass
class ModelArguments:
    base_model: str = field(
        default=EMBEDDED_BASE,
        metadata={"help": "BERT checkpoint to warm-start from: Hub id, local folder, or the embedded default"},
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "continue from a saved multi-task folder instead of building a fresh model"}
    )
    model_revision: str | None = field(
        default=None,
        metadata={
            "help": "Hub revision (branch, tag or commit) of the model the run starts from, --model_name_or_path or a "
            "Hub --base_model: pins its code and weights"
        },
    )
    decoder_layers: int | None = field(
        default=4,
        metadata={
            "help": "decoder depth (a deep encoder with a shallow decoder translates about as well, faster: Kasai "
            "et al. 2021); the checkpoint's depth when unset"
        },
    )
    sentiment_labels: str = field(default="negative,positive", metadata={"help": "class names, in id order"})
    classifier_pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "sentiment head pooling"})
    trim_vocab: bool = field(
        default=False,
        metadata={"help": "keep only the pieces the training data uses, every character and the specials (faster)"},
    )
    freeze_encoder: bool = field(
        default=False,
        metadata={
            "help": "keep the encoder (with the word embeddings the decoder and output layer share) and the sentiment "
            "head as they are: a translation stage that leaves every sentiment output unchanged"
        },
    )
    lora: bool = field(default=False, metadata={"help": "train one LoRA adapter per task instead of all weights"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    merge_adapter: str | None = field(
        default=None,
        metadata={
            "help": "with --lora: also export a plain model with this task's adapter merged",
            "choices": list(TASKS),
        },
    )
    push_space_id: str | None = field(
        default=None,
        metadata={
            "help": "with --push_to_hub: also push a demo Space (Gradio, you/name) of the pushed model, pinned to its "
            "commit (space.py writes it)"
        },
    )

    def __post_init__(self):
        labels = [name.strip() for name in self.sentiment_labels.split(",")]
        if len(labels) < 2 or "" in labels or len(set(labels)) != len(labels):
            raise ValueError(f"sentiment_labels must name two or more distinct classes, got {self.sentiment_labels!r}")
        if self.merge_adapter is not None and self.merge_adapter not in TASKS:
            raise ValueError(f"merge_adapter must be one of {', '.join(TASKS)}, got {self.merge_adapter!r}")
        if self.merge_adapter is not None and not self.lora:
            raise ValueError("merge_adapter needs --lora")
        if self.freeze_encoder and self.lora:
            raise ValueError("--freeze_encoder trains the decoder's own weights; --lora trains adapters: choose one")
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be at least 1, got {self.lora_r}")
        if self.model_name_or_path:  # a folder: a saved multi-task model, no revision beside it
            check_model(self.model_name_or_path, "train.py", self.model_revision, "--model_revision")
        elif self.model_revision and is_local(self.base_model):
            raise ValueError(
                f"--model_revision pins a Hub commit, and --base_model {self.base_model} is a local folder: drop "
                "--model_revision"
            )
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        self.check_no_shape([name for name in SHAPING if getattr(self, name) != defaults[name]])
        if self.model_revision and not self.model_name_or_path and self.base_model == EMBEDDED_BASE:
            raise ValueError(
                "--model_revision pins a Hub model (--model_name_or_path or a Hub --base_model); the run starts from "
                "the embedded default: drop --model_revision"
            )

    def check_no_shape(self, given: list[str], in_recipe: set[str] = frozenset()) -> None:
        """A saved model's shape is fixed: a shaping option (`given`: their names; `in_recipe`: those a recipe sets)
        beside --model_name_or_path would be accepted and silently ignored."""
        if self.model_name_or_path and given:
            flags = ", ".join(f"--{name}" for name in given)
            where = [name for name in given if name in in_recipe]
            raise ValueError(
                f"{flags} shape(s) a fresh model; --model_name_or_path continues {self.model_name_or_path}, whose "
                f"shape is saved with it: drop {flags}"
                + (f" ({', '.join(where)} from the recipe: a copy of it without them)" if where else "")
            )

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(name.strip() for name in self.sentiment_labels.split(",")))


def parse_args(argv: list[str] | None = None):
    """Command line, or a .json/.yaml file (a recipe) whose values later command-line arguments override:
    `python train.py recipes/cpu.yaml --output_dir /data/run1`."""
    argv = sys.argv[1:] if argv is None else argv
    # no abbreviations: an option is known to be given by its full name (`given`), whatever its value
    parser = HfArgumentParser((ModelArguments, DataArguments, MultitaskTrainingArguments), allow_abbrev=False)
    given = set()
    if argv and argv[0].endswith((".json", ".yaml", ".yml")):
        recipe = read_recipe(argv[0], parser)
        parser.set_defaults(**recipe)
        given |= set(recipe)
        argv = argv[1:]
    flags = {arg.split("=")[0].removeprefix("--").replace("-", "_") for arg in argv if arg.startswith("--")}
    given |= flags | {flag.removeprefix("no_") for flag in flags}  # --no_X sets a boolean X
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    # a shaping option given at its default value is no different above: the recipe or the command line says it was
    model_args.check_no_shape([name for name in SHAPING if name in given], in_recipe=given - flags)
    check_unused(model_args, training_args, given)
    implied = implied_defaults(vars(parser.parse_args(argv)), data_args, training_args, given)
    if implied:
        parser.set_defaults(**implied)
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    return model_args, data_args, training_args


# Seq2SeqTrainingArguments options that train.py has no use for: the value that says what it does anyway, and why
EVALUATES_ITSELF = "evaluation scores each set in its own loop, on generated translations"
PUSHES_ONCE = "the finished folder is pushed once, with its model card, after training"
UNUSED = {
    "predict_with_generate": (True, EVALUATES_ITSELF),
    "prediction_loss_only": (False, EVALUATES_ITSELF),
    "eval_accumulation_steps": (None, EVALUATES_ITSELF),
    "batch_eval_metrics": (False, EVALUATES_ITSELF),
    "eval_do_concat_batches": (True, EVALUATES_ITSELF),
    "include_for_metrics": ([], EVALUATES_ITSELF),
    "sortish_sampler": (False, "batches are grouped by length already (--train_sampling_strategy group_by_length)"),
    "length_column_name": ("length", "the batch sampler measures the lengths itself"),
    "hub_strategy": ("end", PUSHES_ONCE),
    "hub_always_push": (False, PUSHES_ONCE),
    "hub_revision": (None, PUSHES_ONCE + ", to the main branch"),
}


def check_unused(model_args, training_args, given: set[str]) -> None:
    """An option given that would have no effect is refused by name: a Trainer option train.py has no use for, or
    one whose partner option is missing."""
    for name, (value, reason) in UNUSED.items():
        if name in given and getattr(training_args, name) != value:
            shown = getattr(training_args, name)
            raise ValueError(f"--{name} {getattr(shown, 'value', shown)}: {reason}; leave --{name} out")
    needs = {
        "lora_r": (model_args.lora, "--lora"),
        "lora_alpha": (model_args.lora, "--lora"),
        "lora_dropout": (model_args.lora, "--lora"),
        "sampling_temperature": (training_args.task_sampling == "temperature", "--task_sampling temperature"),
    }
    for name, (applies, partner) in needs.items():
        if name in given and not applies:
            raise ValueError(f"--{name} applies with {partner} only: add {partner}, or leave --{name} out")


PHASES = {"do_eval": "validation", "do_predict": "test"}  # what each phase scores, besides training


def implied_defaults(raw: dict, data_args, training_args, given: set[str]) -> dict:
    """What the run's phases leave out, as new defaults; a contradiction between options is an error.

    Named --do_* options run the phases they name, as in the HF example scripts: `--do_train --do_eval` trains and
    scores the validation sets (the demo set's, by default), `--do_train` alone trains only. Without them, train.py
    does every phase its data gives. A run with no validation set does not evaluate (Trainer would refuse). `raw`:
    the parsed values before the training arguments' own defaults (which turn do_eval on wherever eval_strategy
    evaluates)."""
    implied = {}
    named = [f"--{name}" for name in ("do_train", *PHASES) if name in given]
    if named and not raw["do_train"]:
        raise ValueError(
            f"{' '.join(named)} without --do_train: train.py trains. To score a saved model without training it: "
            "python evaluate_model.py --model FOLDER --sentiment_test ... --translation_test ..."
        )
    for phase, role in PHASES.items() if named else ():
        options = [f"--{task}_{role}" for task in TASKS]
        sets = [f"{task}_{role}" for task in TASKS if data_args.sources(task, role)]
        if raw[phase] and not sets:
            raise ValueError(f"--{phase}: this run has no {role} sets; give {' or '.join(options)}")
        chosen = [f"--{option}" for option in sets if option in given]
        if not raw[phase] and chosen:
            raise ValueError(
                f"{', '.join(chosen)} give(s) {role} sets, and {' '.join(named)} leaves out --{phase}: add --{phase}, "
                f"or leave the sets out ({' '.join(f'{option} none' for option in chosen)})"
            )
        if not raw[phase]:
            implied.update(dict.fromkeys(sets))  # the demo set's validation sets, a default
    validates = any(data_args.sources(task, "validation") and f"{task}_validation" not in implied for task in TASKS)
    if not validates and training_args.eval_strategy != "no":
        if "eval_strategy" in given:
            remedy = (
                "add --do_eval"  # the validation sets are there, left out by the phases named
                if named and not raw["do_eval"]
                else f"give {' or '.join(f'--{task}_validation' for task in TASKS)}"
            )
            raise ValueError(
                f"--eval_strategy {training_args.eval_strategy.value}: this run has no validation sets to evaluate; "
                f"{remedy}, or --eval_strategy no"
            )
        implied["eval_strategy"] = "no"
    return implied


def read_recipe(path: str, parser: HfArgumentParser) -> dict:
    """The arguments of a .json or .yaml file (JSON is YAML), every key checked against the known arguments."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read the arguments file {path}: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of argument names to values, not {type(values).__name__}")
    known = {f.name for dataclass_type in parser.dataclass_types for f in dataclasses.fields(dataclass_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown argument(s) {', '.join(unknown)} (see python train.py --help)")
    return values


def setup_logging(training_args) -> None:
    """This project's own messages (which weights were loaded, data sizes, trimming, adapter sizes) at INFO on the main
    process; transformers and datasets at the level `--log_level` asks (their default keeps them to warnings)."""
    configure_logging(
        logging.INFO if training_args.should_log else logging.WARNING,
        fmt="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    level = training_args.get_process_log_level()
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def load_model(model_args: ModelArguments):
    """A saved multi-task folder to continue from, or a fresh model warm-started from the base checkpoint."""
    if model_args.model_name_or_path:
        pinned = {"revision": model_args.model_revision} if model_args.model_revision else {}
        # a folder that is not there yet is looked up on the Hub
        hint = (
            ". A recipe that continues another run's folder (recipes/cpu_stage2.yaml continues outputs/cpu) needs that "
            "run first, or --model_name_or_path <its folder>"
        )
        model = load_named(
            lambda: AutoModel.from_pretrained(model_args.model_name_or_path, trust_remote_code=True, **pinned),
            model_args.model_name_or_path,
            "--model_name_or_path",
            hint,
        )
        tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, trust_remote_code=True, **pinned)
        check_tokenizer(model.config, tokenizer)
        if model.config.id2label != model_args.id2label:
            raise ValueError(
                f"{model_args.model_name_or_path} classifies {model.config.id2label}, not {model_args.id2label}"
            )
        return model, tokenizer
    return build_multitask_model(
        model_args.base_model,
        decoder_layers=model_args.decoder_layers,
        id2label=model_args.id2label,
        classifier_pooling=model_args.classifier_pooling,
        revision=model_args.model_revision,
    )


def trim_to_data(model, tokenizer, train_sets, held_out: list[str]):
    """Trim the vocabulary to the training data; log how held-out Marathi tokenizes before and after."""
    used = set()
    for dataset in train_sets.values():
        for column in ("input_ids", "labels"):  # sentiment labels are class ids, not tokens
            if column in dataset.column_names and isinstance(dataset[0][column], list):
                used.update(i for ids in dataset[column] for i in ids)
    trimmed_model, trimmed_tokenizer, _ = trim_vocabulary(model, tokenizer, used)  # logs what it kept
    if held_out:
        logger.info(
            "held-out Marathi: %.2f pieces per sentence before trimming, %.2f after",
            pieces_per_sentence(tokenizer, held_out),
            pieces_per_sentence(trimmed_tokenizer, held_out),
        )
    return trimmed_model, trimmed_tokenizer


def take_hub_token(training_args) -> str | None:
    """The Hub token, taken out of the training arguments before any Trainer exists: Trainer pickles its arguments
    into training_args.bin of every checkpoint and of the final folder, which publish() uploads. The token stays in
    memory and goes to publish() only."""
    token, training_args.hub_token = training_args.hub_token, None
    return token


def resume_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from (`true`: the latest in output_dir), checked file by file before any model is
    loaded. DeepSpeed and FSDP keep their states their own way: those are left to Trainer."""
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if checkpoint and not (training_args.deepspeed or training_args.fsdp):
        check_checkpoint(checkpoint, training_args.world_size)
    training_args.resume_from_checkpoint = checkpoint
    return checkpoint


# What a resumed run must share with the run that saved the checkpoint: its model, its data and the order and make of
# its batches, its optimisation. Free to change: the length of training, evaluation, saving, logging, the output folder,
# and bf16 autocast (the advice for cores without native bfloat16 is to resume a run with --bf16 false).
RESUME_FIXED = {
    "model": (
        *("base_model", "model_name_or_path", "model_revision", "decoder_layers", "classifier_pooling"),
        *("sentiment_labels", "trim_vocab", "freeze_encoder", "lora", "lora_r", "lora_alpha", "lora_dropout"),
    ),
    "training": (
        *("seed", "data_seed", "per_device_train_batch_size", "gradient_accumulation_steps", "task_sampling"),
        *("sampling_temperature", "train_sampling_strategy", "sentiment_loss_weight", "translation_loss_weight"),
        *("learning_rate", "fresh_learning_rate", "decoder_learning_rate", "weight_decay", "lr_scheduler_type"),
        *("warmup_steps", "label_smoothing_factor", "optim"),
    ),
}
SCORING_ONLY = ("validation", "test", "max_eval_samples", "preprocessing_num_workers")  # data options of no batch


def run_arguments(model_args, data_args, training_args) -> dict:
    """The options a resume must share with the run (`RESUME_FIXED`, and the training data's), as JSON values; local
    files by their absolute paths, so that a resume from another directory compares the same files."""

    def plain(name: str, value):
        if isinstance(value, list):
            return [plain(name, v) for v in value]
        located = name.endswith("_train") or name in ("base_model", "model_name_or_path")
        if located and isinstance(value, str) and value and Path(value).exists():
            return str(Path(value).resolve())
        return value if isinstance(value, (int, float, bool, type(None))) else str(value)

    names = [(model_args, n) for n in RESUME_FIXED["model"]] + [(training_args, n) for n in RESUME_FIXED["training"]]
    data = [f.name for f in dataclasses.fields(data_args) if not any(part in f.name for part in SCORING_ONLY)]
    if data_args.max_train_samples is None:  # which rows a cap keeps: no cap on the training data, no difference
        data.remove("samples_from")
    names += [(data_args, n) for n in data]
    return {name: plain(name, getattr(group, name)) for group, name in names}


def check_resume_arguments(checkpoint: str, arguments: dict) -> None:
    """A resume continues the checkpoint's run: other data, batches, model or optimisation would make a model
    neither run describes, under the first run's card. Refused, naming each difference."""
    path = Path(checkpoint) / RUN_ARGUMENTS
    if not path.is_file():
        logger.warning(
            "%s has no %s (an older checkpoint): the resume is not checked against its run", checkpoint, path.name
        )
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    # an option the checkpoint does not record is newer than it: nothing to compare
    differ = [
        f"--{name} {saved[name]!r} -> {value!r}" for name, value in arguments.items() if saved.get(name, value) != value
    ]
    if differ:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} continues a run with other options ({'; '.join(differ)}): resume "
            "with that run's options (the length of training, evaluation, saving and logging may change), or start "
            "a new run without --resume_from_checkpoint"
        )


def resumes_here(checkpoint: str | None, output_dir: str | os.PathLike) -> bool:
    """Whether the run resumes one of its output folder's own checkpoints (and so continues that folder's run)."""
    return bool(checkpoint) and final_path(checkpoint).parent == final_path(output_dir)


def clear_earlier_run(training_args, keep: str | None) -> None:
    """--overwrite_output_dir replaces the earlier run in the folder: what of it this run may not write again
    (checkpoints a resume would pick, merged exports, scores, curves) goes before training, or it would read as this
    run's and a push would upload it. Other files are kept, and so is `keep` (the model this run continues)."""
    if training_args.process_index != 0:
        return
    kept = final_path(keep) if keep and is_local(keep) else None
    for path in RunLayout(training_args.output_dir).run_outputs():
        if kept is not None and (final_path(path) == kept or final_path(path) in kept.parents):
            continue
        logger.info("--overwrite_output_dir: removing the earlier run's %s", path.name)
        retire(path)


def check_output_dir(training_args, checkpoint: str | None, lora: bool) -> None:
    """Never train over an earlier run unless told to: Trainer would write over a finished model, or over an
    unfinished run's checkpoints and then rotate them away. Hidden entries (what a killed save left) do not count."""
    out = Path(training_args.output_dir)
    if not out.is_dir():
        return
    stale = RunLayout(out).adapters()
    if training_args.overwrite_output_dir and stale and not lora:  # a LoRA run writes its own adapters over them
        # the new model's files replace the old ones, but nothing replaces adapter folders: the folder would read as
        # a LoRA run of the new base (its card, predict.py's refusal, an upload)
        raise FileExistsError(
            f"{out} holds a LoRA run's adapters ({', '.join(stale)}), which --overwrite_output_dir would leave beside "
            "the new model: choose another --output_dir, or remove them first"
        )
    # resuming a checkpoint of this folder continues its run; one of another folder starts this one anew
    if training_args.overwrite_output_dir or resumes_here(checkpoint, out):
        return
    found = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    last = get_last_checkpoint(out)
    if RunLayout(out).holds_model():
        problem, remedy = "already holds a trained model", "choose another --output_dir, or --overwrite_output_dir"
    elif last:
        checkpoints = ", ".join(name for name in found if name.startswith("checkpoint-"))
        problem = f"holds the checkpoints of an unfinished run ({checkpoints})"
        remedy = (
            f"resume it with --resume_from_checkpoint {last} (or --resume_from_checkpoint true for the latest), "
            "or train over it with --overwrite_output_dir"
        )
    elif found:
        problem = f"is not empty ({', '.join(found[:5])}{', ...' if len(found) > 5 else ''})"
        remedy = "choose a new or empty --output_dir, or --overwrite_output_dir to write into this one"
    else:
        return
    raise FileExistsError(f"{out} {problem}: {remedy}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """The recipe: arguments, data, model, trainer, train, evaluate, save, card, publish."""
    model_args, data_args, training_args = parse_args(argv)
    hub_token = take_hub_token(training_args)
    setup_logging(training_args)
    set_seed(training_args.seed)
    checkpoint = resume_checkpoint(training_args)
    check_output_dir(training_args, checkpoint, model_args.lora)
    arguments = run_arguments(model_args, data_args, training_args)
    if checkpoint:
        check_resume_arguments(checkpoint, arguments)
    # The finished folder is uploaded once, with its model card, by publish(); Trainer's own pushes (with a generic
    # card, at every save) are turned off.
    push, training_args.push_to_hub = training_args.push_to_hub, False
    if push and not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id")
    check_extras(model_args, data_args, training_args, push)
    check_best_metric(training_args, data_args)
    if push and training_args.process_index == 0:
        create_hub_repos(training_args, model_args.push_space_id, hub_token)
    run = RunLayout(training_args.output_dir)

    model, tokenizer = load_model(model_args)
    check_training_lengths(model.config, data_args, training_args)
    data, model, tokenizer = load_data(data_args, training_args, model_args, model, tokenizer)
    model.config.trained_tasks = trained_tasks(model.config, data_args, training_args, model_args.model_name_or_path)
    train_set = MultitaskDataset(data.train, data.source_weights())
    if model_args.lora:
        model = with_adapters(model, tokenizer, model_args, training_args, run, checkpoint)
    if model_args.freeze_encoder:
        freeze_encoder(model)

    trainer = MultitaskTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset={s.name: s for s in data.validation} or None,
        processing_class=tokenizer,
        data_collator=MultitaskCollator(tokenizer, model),
        lora_base=str(run.lora_base) if model_args.lora else None,
        run_arguments=arguments,
    )
    shares = task_shares(
        train_set, training_args.train_batch_size, training_args.task_sampling, training_args.sampling_temperature
    )
    logger.info("task sampling %s: %s", training_args.task_sampling, shares)

    if training_args.overwrite_output_dir and not resumes_here(checkpoint, training_args.output_dir):
        clear_earlier_run(training_args, keep=model_args.model_name_or_path)  # last: every check has passed
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    save(trainer, run, model_args.lora)
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    metrics, results = evaluate(trainer, data)
    if trainer.is_world_process_zero():
        finish(model_args, data, training_args, trainer, shares, results, push, hub_token)
    return metrics


def load_data(data_args, training_args, model_args, model, tokenizer):
    """Every task's data, read and checked once, then tokenized; with --trim_vocab, the vocabulary trimmed to the
    training data and the same rows tokenized again with it."""
    with training_args.main_process_first(desc="loading and tokenizing the data"):
        rows = read_task_data(data_args, model.config.label2id)
        data = tokenize_task_data(rows, data_args, tokenizer)
    if model_args.trim_vocab:
        held_out = [ref for s in data.validation if TASKS[s.task].generates for ref in s.references]
        model, tokenizer = trim_to_data(model, tokenizer, data.train, held_out)
        with training_args.main_process_first(desc="tokenizing the data with the trimmed vocabulary"):
            data = tokenize_task_data(rows, data_args, tokenizer)
    return data, model, tokenizer


def trained_tasks(config, data_args, training_args, continued: str | None) -> list[str] | None:
    """The tasks whose heads the saved model will have trained (`config.trained_tasks`; None: every task): this run's,
    those with training data and a loss weight above 0, and those the model it continues had. The pipeline refuses
    to answer for the others, whose heads are as the warm start left them."""
    trained = {t for t in TASKS if data_args.sources(t, "train") and training_args.loss_weight(t) > 0}
    before = set() if not continued else set(TASKS if config.trained_tasks is None else config.trained_tasks)
    tasks = [task for task in TASKS if task in trained | before]
    return None if len(tasks) == len(TASKS) else tasks


def with_adapters(model, tokenizer, model_args, training_args, run: RunLayout, checkpoint: str | None):
    """One LoRA adapter per task; the frozen base they apply to is saved aside until the final save takes it in (a
    resume checks first that it is the base the checkpoint's adapters were trained on)."""
    if checkpoint:
        check_same_base(model, checkpoint)
    # MultitaskTrainer sets the model's smoothing when it is made; the base saved now, before it, must carry it too
    model.config.label_smoothing = training_args.label_smoothing_factor
    if training_args.process_index == 0:
        save_model(model, tokenizer, str(run.lora_base))
    model = add_task_adapters(model, model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout)
    for name, count in trainable_parameters(model).items():
        logger.info("trainable parameters, %s: %s", name, f"{count:,}")
    return model


def freeze_encoder(model) -> None:
    """Freeze the encoder and the sentiment head. The word embeddings are one tensor, tied to the decoder's input and
    the output layer, and stay frozen with it: the encoder, and so every sentiment output, stays exactly as it was."""
    model.encoder.requires_grad_(False)
    model.classifier.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("encoder and sentiment head frozen: %s parameters train", f"{trainable:,}")


def save(trainer: MultitaskTrainer, run: RunLayout, lora: bool) -> None:
    """The final model into the run's folder (a LoRA run: its base and one adapter folder per task)."""
    trainer.save_model()
    if lora and trainer.args.should_save:
        shutil.rmtree(run.lora_base)  # in the final folder now


def evaluate(trainer: MultitaskTrainer, data: TaskData) -> tuple[dict[str, float], list[SetResult]]:
    """Every validation set (`eval_*`, with the combined score) and test set (`test_*`), scored once more after
    training: the metrics as logs and `all_results.json` name them, and the results as the card reads them."""
    validation = trainer.score_sets(data.validation)
    test = trainer.score_sets(data.test)
    metrics = trainer.log_results(validation, "eval") if validation else {}
    if test:
        test_metrics = metric_keys(test, "test")
        trainer.log(test_metrics)
        metrics.update(test_metrics)
    if metrics:
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    return metrics, validation + test


def check_training_lengths(config, data_args, training_args) -> None:
    """Before the data is read: the lengths of training and its evaluations within the model's positions."""
    limits = [
        ("max_source_length", data_args.max_source_length, "encoder"),
        ("max_target_length", data_args.max_target_length, "decoder"),
        # the decoder reads the start token and every generated token but the last
        ("generation_max_length", training_args.generation_max_length, "decoder"),
    ]
    check_lengths(config, limits)


def check_best_metric(training_args, data_args) -> None:
    """Before any work: the metric that chooses the best checkpoint is one the evaluations log. Trainer looks it up
    only after the first evaluation, and stops there with nothing saved."""
    metric = training_args.metric_for_best_model
    validation = [source for task in TASKS for source in data_args.sources(task, "validation")]
    if not metric or training_args.eval_strategy == "no" or not validation:
        return
    logged = [metric_key("eval", "combined")] + [
        metric_key("eval", s.name, name) for s in validation for name in ("loss", *TASKS[s.task].card.metrics)
    ]
    if (metric if metric.startswith("eval_") else f"eval_{metric}") not in logged:
        raise ValueError(
            f"--metric_for_best_model {metric}: the evaluations log no such metric; they log {', '.join(logged)}"
        )


def check_extras(model_args, data_args, training_args, push: bool) -> None:
    """Before any work: an option whose partner option or package is missing would fail only after training."""
    if not any(data_args.sources(task, "train") for task in TASKS):
        raise ValueError(
            f"no training data: {' and '.join(f'--{task}_train' for task in TASKS)} are all none (evaluate_model.py "
            "scores a model without training it)"
        )
    if model_args.freeze_encoder:
        trained = [t for t, task in TASKS.items() if not task.generates and data_args.sources(t, "train")]
        if trained:
            raise ValueError(
                f"--freeze_encoder leaves nothing that {', '.join(trained)} trains: drop its training data "
                f"(--{trained[0]}_train none) or --freeze_encoder"
            )
    if model_args.trim_vocab and model_args.model_name_or_path:
        # trimming keeps the pieces this run's training data uses: a trained model would lose those only the absent
        # task's data used, and its outputs for that task would change (a frozen encoder's too)
        absent = [t for t in TASKS if not data_args.sources(t, "train")]
        if absent:
            raise ValueError(
                f"--trim_vocab keeps only the pieces this run's training data uses, and this run has no {absent[0]} "
                f"training data: {model_args.model_name_or_path} would lose the pieces only its {absent[0]} data "
                "used. Leave out --trim_vocab (a trained folder keeps the vocabulary it was trimmed to)"
            )
    if model_args.push_space_id and not push:
        raise ValueError(
            "--push_space_id pushes a demo Space of the pushed model: add --push_to_hub true --hub_model_id you/name"
        )
    if model_args.push_space_id and model_args.lora:
        # a Space runs the pushed folder through its pipeline, which loads a LoRA run's base without the adapters
        raise ValueError(
            "--push_space_id makes a Space that runs plain models, and a --lora run's folder loads as its base "
            "without the adapters: leave --push_space_id out, and make a Space of a merged-<task> folder (pushed "
            "to the Hub) with space.py"
        )
    for name, part in (("fresh_learning_rate", "the fresh parts'"), ("decoder_learning_rate", "the decoder's")):
        if model_args.lora and getattr(training_args, name) is not None:
            raise ValueError(
                f"--{name} sets {part} rate in full fine-tuning; a --lora run trains adapters and heads only: leave "
                "it out and set their rate with --learning_rate"
            )
    if model_args.push_space_id:
        gradio_version()  # the Space's sdk_version, pinned in requirements-demo.txt: an error names a bad pin
    report_to = training_args.report_to or []
    if "tensorboard" in ([report_to] if isinstance(report_to, str) else report_to) and not (
        find_spec("tensorboard") or find_spec("tensorboardX")
    ):
        raise ValueError(
            "--report_to tensorboard needs TensorBoard, which is not installed: pip install tensorboard "
            "(requirements-dev.txt has it), or leave --report_to out"
        )


def widget_outputs(model_args, trainer) -> list[dict] | None:
    """What the trained model gives for the card's widget texts. None for a LoRA run: its folder loads as the frozen
    base (the adapters come through multitask_bert.lora.load_task_adapters), so the outputs of the adapters are not
    what the folder, its pipeline or a Space on it gives; the card then lists the texts without outputs. None too for
    a model with an untrained head, which the pipeline refuses to run."""
    if model_args.lora or untrained_tasks(trainer.model.config, list(TASKS)):
        return None
    return record_widget_outputs(trainer.model, trainer.processing_class)


def finish(
    model_args, data: TaskData, training_args, trainer, shares, results: list[SetResult], push: bool, hub_token
) -> None:
    """Model card, optional merged export, optional push, and the closing summary."""
    out = training_args.output_dir
    curves = plot_run(out)  # from the trainer_state.json just saved
    if curves is None:  # a run shorter than one logging interval has no point to draw
        logger.warning(
            "no training curves: the run logged no training loss (%d steps, --logging_steps %s)",
            trainer.state.global_step,
            training_args.logging_steps,
        )
    base = trainer.model.get_base_model() if model_args.lora else trainer.model
    write_model_requirements(out, adapters=model_args.lora)  # what loading the folder needs: less than training
    write_model_card(
        out,
        model_name=training_args.hub_model_id or os.path.basename(os.path.abspath(out)),
        base_model=model_args.model_name_or_path or model_args.base_model,
        labels=list(base.config.id2label.values()),
        results=results,
        training_data=training_data(data),
        demo_trained=trained_on_demo(data),
        training_procedure=training_procedure(
            training_args,
            shares,
            lora_r=model_args.lora_r if model_args.lora else None,
            best_step=best_step(trainer),
            frozen_encoder=model_args.freeze_encoder,
        ),
        curves_file=curves.name if curves else None,
        repo_id=training_args.hub_model_id,
        widget_outputs=widget_outputs(model_args, trainer),
        space_id=model_args.push_space_id,
        adapters=RunLayout(out).adapters(),
    )
    if model_args.merge_adapter:
        merged_dir = str(RunLayout(out).merged(model_args.merge_adapter))
        merged = merge_task_adapter(trainer.model, model_args.merge_adapter)
        # the other task's head is the base's: the export serves its task alone, where the run trained it
        task = model_args.merge_adapter
        merged.config.trained_tasks = [] if untrained_tasks(merged.config, [task]) else [task]
        save_model(merged, trainer.processing_class, merged_dir)
        write_model_requirements(merged_dir)
        logger.info("Saved a plain model with the %s adapter merged to %s", model_args.merge_adapter, merged_dir)
    signed = signatures(results)
    if signed:
        print("sacreBLEU signatures: " + ", ".join(f"{metric_name(name)} {value}" for name, value in signed.items()))
    if push:
        try:
            commit = publish(out, training_args.hub_model_id, hub_token, training_args.hub_private_repo)
        except Exception as err:  # HTTP, connection (not OSErrors in httpx) or login errors: the upload failed
            excluded = " ".join(f'--exclude "{pattern}"' for pattern in UNPUBLISHED)
            raise OSError(
                f"{out} holds the trained model, and uploading it to {training_args.hub_model_id} failed "
                f"({first_line(err)}): upload it with hf upload {training_args.hub_model_id} {out} {excluded}"
            ) from err
        if model_args.push_space_id:
            publish_space(
                space_id=model_args.push_space_id,
                repo_id=training_args.hub_model_id,
                revision=commit.oid,
                token=hub_token,
                private=training_args.hub_private_repo,
            )
    print(f"Saved to {out}")


def best_step(trainer) -> int | None:
    """The step whose weights the run ended with, where that is its best checkpoint: Trainer loads the best only if
    its folder is still there (a resume from a copied checkpoint can name one that is gone), and says so in a log."""
    state = trainer.state
    if not trainer.args.load_best_model_at_end or not state.best_model_checkpoint:
        return None
    return state.best_global_step if os.path.isdir(state.best_model_checkpoint) else None


def metric_name(metric: str) -> str:
    """A metric as the card shows it ('chrfpp' -> 'chrF++')."""
    return next((shown for t in TASKS.values() for m, (_, shown) in t.card.metrics.items() if m == metric), metric)


def publish_space(space_id: str, repo_id: str, revision: str, token: str | None, private: bool | None) -> str:
    """Write the demo Space of the model just pushed, pinned to that commit, and upload it; its commit id is returned.
    A private model needs an HF_TOKEN secret in the Space's settings to be loaded there."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_space(repo_id, Path(tmp) / "space", revision=revision, space_id=space_id, on_hub=True)
        commit = push_space(folder, space_id, token=token, private=private)
    logger.info("Pushed the demo Space https://huggingface.co/spaces/%s (model %s at %s)", space_id, repo_id, revision)
    return commit


def publish(folder: str, repo_id: str | None, token: str | None, private: bool | None):
    """Upload the finished folder (weights, code, tokenizer, model card, metrics) to a Hub model repository; the
    commit (`CommitInfo`: `.oid` pins it) is returned."""
    if not repo_id:
        raise ValueError("--push_to_hub needs --hub_model_id")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        commit_message="Upload multitask-bert model",
        ignore_patterns=UNPUBLISHED,
    )


UNPUBLISHED = ["checkpoint-*", "runs/*", ".*", "*/.*"]  # what a push leaves out (hidden: what an interrupted save left)


def create_hub_repos(training_args, space_id: str | None, token: str | None) -> None:
    """Before any work, as Trainer does when it pushes: the repositories the push writes to are created (or found),
    so that a missing login, a wrong id or no network stops the run now instead of after training."""
    api = HfApi(token=token)
    private = training_args.hub_private_repo
    repos = [(training_args.hub_model_id, {})]
    if space_id:
        repos.append((space_id, {"repo_type": "space", "space_sdk": "gradio"}))
    for repo_id, kind in repos:
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, **kind)
        except Exception as err:  # HTTP, connection (not OSErrors in httpx), offline, login errors; a bad id
            raise OSError(
                f"--push_to_hub: cannot create or reach {repo_id} on the Hub ({first_line(err)}). Checked before "
                "training, which would end with nothing pushed: log in (hf auth login, or --hub_token), check "
                "--hub_model_id and --push_space_id, or leave --push_to_hub out and upload the folder later"
            ) from err


if __name__ == "__main__":
    main()
