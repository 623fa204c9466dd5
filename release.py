"""Make a compact release of a trained folder: the weights in half precision (half the download, no loss worth
measuring for inference), loaded back as float32, with the run's card, results and training curves.

    python release.py --model outputs/cpu --out reference --model_name multitask-bert --num_beams 4
    python release.py --model outputs/cpu --average outputs/cpu/checkpoint-7000 outputs/cpu/checkpoint-8000 --out avg

`--average` releases the mean of several checkpoints' weights (checkpoint averaging: the last checkpoints of a run lie
around the same minimum, and their mean usually scores a little higher than any of them) with `--model`'s tokenizer,
settings, card and curves; score it on validation data before choosing it.

The release carries the `requirements.txt` of what loading it needs. The card's widget outputs are recorded again
from the released model (its generation settings, its rounded weights), and `--model_name` gives the card its title.
Score the release with `evaluate_model.py --model <out> --add_to_card true`: its card then shows those whole-set
figures, with how they were scored, at the top of its Results.
The release is written complete or not at all (`multitask_bert/atomic.py`), and an existing `--out` is replaced only
with `--overwrite true`. `config.json` names float32 as the model's dtype: `from_pretrained` then computes in float32
on any machine (CPUs compute float16 slowly), while the file on disk holds float16.
"""

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoTokenizer, GenerationConfig, HfArgumentParser

from configuration_multitask import MultitaskBertConfig
from modeling_multitask import MultitaskBertModel, default_generation_config
from multitask_bert.atomic import atomic_file, atomic_folder, check_keeps
from multitask_bert.build import save_tokenizer
from multitask_bert.card import mark_unscored, rename_card, rerecord_widget
from multitask_bert.run_layout import check_plain_model
from multitask_bert.space import write_model_requirements

# What a release carries besides the model: the card and what it shows and cites.
RUN_FILES = ("README.md", "all_results.json", "eval_results.json", "train_results.json", "training_curves.png")
# scores of the run's weights: no release of averaged ones has them
MEASURED = ("all_results.json", "eval_results.json")
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
GENERATION = ("num_beams", "length_penalty", "no_repeat_ngram_size")  # the settings a release may set
BEAM_ONLY = ("length_penalty", "early_stopping")  # used by beam search alone


@dataclass
class ReleaseArguments:
    model: str = field(metadata={"help": "a trained model folder (train.py's output_dir)"})
    out: str = field(metadata={"help": "the release folder to write"})
    dtype: str = field(default="float16", metadata={"help": "dtype of the weights on disk: float16, bfloat16, float32"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing --out"})
    num_beams: int | None = field(default=None, metadata={"help": "the release's default beams (generation_config)"})
    length_penalty: float | None = field(default=None, metadata={"help": "its default beam length penalty"})
    no_repeat_ngram_size: int | None = field(default=None, metadata={"help": "its default n-gram repeat ban"})
    model_name: str | None = field(
        default=None,
        metadata={"help": "the release's name: its card's title and model-index name (default: the run's)"},
    )
    average: list[str] = field(
        default_factory=list,
        metadata={"help": "release the mean of these checkpoints' weights (two or more folders of the same model)"},
    )

    def __post_init__(self):
        inputs = [("--model", self.model)] + [("--average", folder) for folder in self.average]
        check_keeps(self.out, inputs)  # before the check below, whose answer is --overwrite true
        for _, folder in inputs:
            check_plain_model(folder, "release.py")  # a LoRA run's folder would release its base alone
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not (Path(self.model) / "config.json").is_file():
            raise FileNotFoundError(f"{self.model} holds no model (no config.json): give a finished run's folder")
        for name in ("num_beams", "no_repeat_ngram_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if len(self.average) == 1:
            raise ValueError("--average needs two or more checkpoint folders (one is --model itself)")
        for folder in self.average:
            if not (Path(folder) / "config.json").is_file():
                raise FileNotFoundError(f"--average {folder} holds no model (no config.json)")
        if Path(self.out).exists() and not self.overwrite:
            raise FileExistsError(f"{self.out} exists: choose another --out, or --overwrite true")


def release_generation(args: ReleaseArguments) -> GenerationConfig:
    """The model's generation settings with the release's given ones. A greedy release (`--num_beams 1`) drops the
    beam-search-only settings it would inherit (a length penalty chosen for beam search, say), which the saved
    config may not hold beside one beam; given ones stay, and a combination generate() refuses is an error."""
    try:
        config = GenerationConfig.from_pretrained(args.model)
    except OSError:  # a folder without generation_config.json: the settings the model itself falls back to
        config = default_generation_config(MultitaskBertConfig.from_pretrained(args.model))
    given = {name: getattr(args, name) for name in GENERATION if getattr(args, name) is not None}
    config.update(**given)
    if config.num_beams == 1:
        defaults = GenerationConfig()
        for name in BEAM_ONLY:
            if name not in given:
                setattr(config, name, getattr(defaults, name))
    try:
        config.validate(strict=True)
    except ValueError as err:
        flags = " ".join(f"--{name} {value}" for name, value in given.items())
        raise ValueError(f"{flags}: the release's generation settings are invalid: {err}") from err
    return config


def release(args: ReleaseArguments) -> Path:
    generation = release_generation(args)  # a combination generate() refuses: said before any weight loads
    model = MultitaskBertModel.from_pretrained(args.model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=True)
    model.config.check_tokenizer(tokenizer)
    if args.average:
        model.load_state_dict(averaged_weights(args.average))
    # generation settings chosen on validation data become the defaults of pipeline(), generate() and the demo page
    model.generation_config = generation
    model.to(DTYPES[args.dtype])  # rounded: the weights as the release holds them
    with atomic_folder(args.out, replace=args.overwrite) as tmp:
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        config["dtype"] = "float32"  # what from_pretrained computes in; the weights are cast on loading
        with atomic_file(tmp / "config.json") as f:
            f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for name in RUN_FILES:
            if args.average and name in MEASURED:  # figures of --model's weights, not of their mean
                continue
            if (Path(args.model) / name).is_file():
                shutil.copy2(Path(args.model) / name, tmp / name)
        write_model_requirements(tmp)  # the card's "How to use" points to it
        if (tmp / "README.md").is_file():
            # the card's widget shows what the model answered at the end of training: the release answers with its
            # own generation settings and rounded weights, computed in float32 as from_pretrained will
            rerecord_widget(tmp / "README.md", model.to(torch.float32), tokenizer)
            if args.model_name:
                rename_card(tmp / "README.md", args.model_name)
            if args.average:
                mark_unscored(tmp / "README.md", averaged_note(args))
    return Path(args.out)


def averaged_note(args: ReleaseArguments) -> str:
    return (
        f"**Not these weights' scores.** This release is the mean of the weights of {len(args.average)} checkpoints "
        f"(`release.py --average`); the figures below were measured on `{Path(args.model).name}` before averaging. "
        f"Score the release with `evaluate_model.py --model <this folder> --add_to_card true`."
    )


def averaged_weights(folders: list[str]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the checkpoints' weights, in float32. Checkpoints of different shapes or weight names
    (another model, another vocabulary) are refused, naming the first that differs."""
    total: dict[str, torch.Tensor] = {}
    for folder in folders:
        weights = MultitaskBertModel.from_pretrained(folder, dtype=torch.float32).state_dict()
        if total and (weights.keys() != total.keys() or any(weights[k].shape != total[k].shape for k in total)):
            raise ValueError(f"--average: {folder} is not the same model as {folders[0]} (other weights or shapes)")
        for name, tensor in weights.items():
            total[name] = total[name] + tensor if name in total else tensor.clone()
    return {name: tensor / len(folders) for name, tensor in total.items()}


def main(argv: list[str] | None = None) -> Path:
    (args,) = HfArgumentParser(ReleaseArguments).parse_args_into_dataclasses(args=argv)
    out = release(args)
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    print(f"Wrote {out} ({size / 2**20:.1f} MiB of {args.dtype} weights)", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
