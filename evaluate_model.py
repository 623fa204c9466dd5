"""Evaluation command: score a saved model folder or a Hub model on test sets of its tasks.

    python evaluate_model.py --model outputs/multitask-bert --sentiment_test ../shared/data/sst2/validation.jsonl \\
        --translation_test ../shared/data/ntrex128_en_mr/test.jsonl --output_json results.json --add_to_card true
    python evaluate_model.py --model you/multitask-bert --revision <commit> --sentiment_test nyu-mll/glue \\
        --sentiment_dataset_config sst2 --sentiment_test_split validation --text_column sentence --max_samples 500

Test sets are read and checked by `multitask_bert/data.py` exactly as training reads its `--*_test` sets (the same
column options and the same errors), and predicted and scored by `multitask_bert/evaluation.py` as training's
evaluations are (sentiment: the argmax of the sentiment logits; translation: beam search, decoded as the pipeline
decodes; the scores of `multitask_bert/metrics.py`). `--group_column` adds the score per value of that column (e.g. a
`domain` column) to the sets of the tasks that have one (`grouped_metric` in `multitask_bert.tasks.TASKS`: the
sentiment accuracy).

The results table goes to standard output, progress and logs to standard error. `--output_json` writes every score,
the sacreBLEU signatures, the settings, the model and its revision and the rows of each set; `--add_to_card` adds the
scores to the `model-index` of a local folder's README.md, keeping the results of other sets.

Exit status: 0 when every set was scored, 2 when the run could not start or stopped (the message says why).
"""

import dataclasses
import json
import logging
import os
import sys
from dataclasses import field
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer, HfArgumentParser

from multitask_bert import configure_logging
from multitask_bert.atomic import atomic_file, same_file
from multitask_bert.build import check_lengths
from multitask_bert.card import add_eval_results, eval_results
from multitask_bert.data import DataArguments, EvalSet, column_options, load_task_data, task_options
from multitask_bert.evaluation import SetResult, metric_keys, predict_rows, score_set, signatures
from multitask_bert.run_layout import RunLayout, check_model, is_local, load_named
from multitask_bert.tasks import TASKS, UNTRAINED_WHY, untrained_tasks

SOURCE_LENGTH = 128  # training's --max_source_length default
GROUP_MISSING = "(missing)"  # how a row without a group value is counted
GROUPED = [task for task in TASKS.values() if task.grouped_metric]  # the tasks --group_column applies to
logger = logging.getLogger("multitask_bert.evaluate_model")  # under the project's one logger


class _EvaluateChecks:
    def __post_init__(self):
        for name in ("batch_size", "num_beams", "max_new_tokens", "max_source_length", "max_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.no_repeat_ngram_size is not None and self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be 0 (no ban) or more, got {self.no_repeat_ngram_size}")
        check_model(self.model, "evaluate_model.py", self.revision)
        self.data = data_arguments(self)  # checks the sources as training does
        if not any(getattr(self.data, f"{task}_test") for task in TASKS):
            raise ValueError(f"give at least one test set: {' and/or '.join(f'--{task}_test' for task in TASKS)}")
        if self.add_to_card and not (is_local(self.model) and RunLayout(self.model).model_config.is_file()):
            raise ValueError(
                f"--add_to_card writes into a local model folder's README.md; {self.model} is not one (a Hub "
                "model's card is changed by pushing a new README.md)"
            )
        self._check_outputs()

    def _check_outputs(self):
        """No file the command writes is one of its test sets, or the other file it writes: either would be replaced."""
        outputs = {option: getattr(self, option) for option in ("predictions", "output_json") if getattr(self, option)}
        for option, path in outputs.items():  # found after every set is scored, it would lose the scores
            if os.path.isdir(path):
                raise IsADirectoryError(f"--{option} {path} is a folder; give a file name")
        sets = [(f"--{task}_test", s) for task in TASKS for s in getattr(self.data, f"{task}_test") or []]
        for option, path in outputs.items():
            for set_option, source in sets:
                if os.path.exists(source) and same_file(path, source):
                    raise ValueError(f"--{option} {path} is the test set {source} ({set_option}): it would be replaced")
        if len(outputs) == 2 and same_file(*outputs.values()):
            raise ValueError(f"--predictions and --output_json name one file, {self.output_json}: give two")


grouped = " or ".join(f"{task.name} {task.grouped_metric}" for task in GROUPED)
EvaluateArguments = dataclasses.make_dataclass(
    "EvaluateArguments",
    [
        ("model", str, field(metadata={"help": "a saved model folder or a Hub id"})),
        (
            "revision",
            str | None,
            field(default=None, metadata={"help": "Hub revision (commit) of the model and its code"}),
        ),
        *[option for task in TASKS.values() for option in task_options(task, roles=("test",), demo=False)],
        *column_options(),
        (
            "group_column",
            str | None,
            field(default=None, metadata={"help": f"also give the {grouped} per value of this column, e.g. 'domain'"}),
        ),
        ("max_samples", int | None, field(default=None, metadata={"help": "score N rows of each set"})),
        (
            "samples_from",
            str,
            field(
                default="first",
                metadata={
                    "help": "which rows --max_samples keeps: 'first' (the first N) or 'spread' (N at equal steps)"
                },
            ),
        ),
        (
            "max_source_length",
            int | None,
            field(
                default=None,
                metadata={
                    "help": f"truncate inputs to this many tokens ({SOURCE_LENGTH}, training's default, when unset; "
                    "fewer for a model with fewer positions)"
                },
            ),
        ),
        ("batch_size", int, field(default=32, metadata={"help": "sentences per batch"})),
        (
            "num_beams",
            int | None,
            field(default=None, metadata={"help": "beams for translations (the model's generation_config when unset)"}),
        ),
        (
            "max_new_tokens",
            int | None,
            field(
                default=None,
                metadata={"help": "longest translation, in tokens (the model's generation_config when unset)"},
            ),
        ),
        (
            "length_penalty",
            float | None,
            field(
                default=None,
                metadata={"help": "beam search's length penalty (the model's generation_config when unset)"},
            ),
        ),
        (
            "no_repeat_ngram_size",
            int | None,
            field(
                default=None,
                metadata={
                    "help": "forbid repeating any n-gram of this size, 0: no ban (the model's default when unset)"
                },
            ),
        ),
        (
            "predictions",
            str | None,
            field(
                default=None,
                metadata={"help": "write every prediction with its source and reference to this JSONL file"},
            ),
        ),
        ("output_json", str | None, field(default=None, metadata={"help": "write the results to this JSON file"})),
        (
            "add_to_card",
            bool,
            field(
                default=False,
                metadata={"help": "add the scores to the model-index of the folder's README.md (local only)"},
            ),
        ),
    ],
    bases=(_EvaluateChecks,),
    namespace={"__doc__": "The evaluation command's options.", "__module__": __name__},
)


def data_arguments(args) -> DataArguments:
    """Training's data arguments with test sets only: `multitask_bert/data.py` loads and checks them as it loads
    training's."""
    sources = {}
    for task in TASKS:
        sources |= {f"{task}_train": None, f"{task}_validation": None, f"{task}_test": getattr(args, f"{task}_test")}
        sources |= {name: getattr(args, name) for name in (f"{task}_dataset_config", f"{task}_test_split")}
    columns = {name: getattr(args, name) for name, _, _ in column_options()}
    return DataArguments(
        **sources,
        **columns,
        max_source_length=args.max_source_length,
        max_test_samples=args.max_samples,
        samples_from=args.samples_from,
    )


def all_group_values(sets: list[EvalSet], column: str | None) -> dict[str, list[str]]:
    """Set name -> group of each row, for the sets of grouped tasks that have the group column. Sets without it are
    scored as a whole (of several sets, only some may have, say, a domain); no set having it is an error."""
    tasks = " or ".join(task.name for task in GROUPED)
    candidates = [s for s in sets if TASKS[s.task].grouped_metric]
    if not column:
        return {}
    if not candidates:
        options = " or ".join(f"--{task.name}_test" for task in GROUPED)
        raise ValueError(f"--group_column {column} groups {tasks} rows: give a {options} set")
    having = [s for s in candidates if column in s.rows.column_names]
    if not having:
        found = "; ".join(f"{s.name}: {', '.join(s.rows.column_names)}" for s in candidates)
        raise ValueError(f"--group_column {column!r}: no {tasks} test set has that column (columns: {found})")
    for s in candidates:
        if s not in having:
            logger.warning("%s has no column %r: scored as a whole", s.source.what, column)
    return {s.name: [GROUP_MISSING if v is None else str(v) for v in s.rows[column]] for s in having}


# ---- predictions and scores ----------------------------------------------------------------------------------------


GENERATION = ("num_beams", "max_new_tokens", "length_penalty", "no_repeat_ngram_size")


def generation_settings(args) -> dict:
    """The beam search settings given (0 too: `no_repeat_ngram_size 0` lifts the model's ban); the others come from
    the model's generation_config.json."""
    return {name: getattr(args, name) for name in GENERATION if getattr(args, name) is not None}


def effective_generation(args, model) -> dict:
    """The beam search settings the translations were made with: those given, else the model's generation_config's,
    else generate()'s own defaults."""
    config = model.generation_config
    defaults = {"num_beams": 1, "max_new_tokens": None, "length_penalty": 1.0, "no_repeat_ngram_size": 0}
    settings = {k: v if getattr(config, k, None) is None else getattr(config, k) for k, v in defaults.items()}
    settings |= generation_settings(args)
    if settings["num_beams"] == 1:  # greedy search reads no length penalty: a recorded one would say it did
        del settings["length_penalty"]
    return settings


def score(model, tokenizer, eval_set: EvalSet, args) -> tuple[SetResult, list]:
    """One set's result and its predictions (one per row, in row order), through training's evaluation."""
    task = TASKS[eval_set.task]
    with tqdm(total=len(eval_set.references), desc=f"{eval_set.name} ({eval_set.task})", unit="row") as bar:
        predictions = predict_rows(
            model,
            tokenizer,
            eval_set,
            task.collator(tokenizer, model),
            batch_size=args.batch_size,
            device=model.device,
            generation=generation_settings(args) if task.generates else {},
            progress=bar.update,
        )
    return score_set(eval_set, predictions, with_loss=False), predictions.ordered()


def group_scores(task: str, predictions: list, references: list, groups: list[str]) -> dict[str, dict]:
    """The task's grouped score and the rows, per group value."""
    task = TASKS[task]
    out = {}
    for value in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == value]
        scores, _ = task.score([predictions[i] for i in rows], [references[i] for i in rows])
        out[value] = {task.grouped_metric: scores[task.grouped_metric], "rows": len(rows)}
    return out


def set_entry(result: SetResult, groups: dict[str, dict] | None) -> dict:
    """A set's entry of the results (`--output_json`'s "sets")."""
    entry = {"task": result.task, "split": result.data_split, "source": result.source, "rows": result.rows}
    entry["scores"] = result.scores
    if result.signatures:
        entry["signatures"] = result.signatures
    if groups is not None:
        entry["groups"] = groups
    return entry


def table(sets: dict[str, dict], group_column: str | None) -> str:
    """The results as an aligned Markdown table, then the sacreBLEU signatures."""
    rows = [("set", "task", "metric", "value", "rows")]
    for name, result in sets.items():
        rows += [(name, result["task"], k, f"{v:g}", str(result["rows"])) for k, v in result["scores"].items()]
        for value, group in result.get("groups", {}).items():
            metric = TASKS[result["task"]].grouped_metric
            rows.append(
                (name, result["task"], f"{metric} {group_column}={value}", f"{group[metric]:g}", str(group["rows"]))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    signatures = next((r["signatures"] for r in sets.values() if "signatures" in r), {})
    lines += [f"sacreBLEU {name}: {signature}" for name, signature in signatures.items()]
    return "\n".join(lines)


def scored_with(args, model, test_sets: list[EvalSet], sets: dict[str, dict]) -> dict[str, dict]:
    """How each set was scored, as the card records it next to its scores (`card.add_eval_results`): the rows, the
    settings that change the figures (generation: the ones given, else the model's generation_config), the groups."""
    settings = effective_generation(args, model)
    longest = settings["max_new_tokens"]
    beam = (
        f"beam {settings['num_beams']}, "
        + (f"length_penalty {settings['length_penalty']:g}, " if "length_penalty" in settings else "")
        + f"no_repeat_ngram_size {settings['no_repeat_ngram_size'] or 'none'}, "
        + (f"max {longest} new tokens" if longest else f"max length {model.generation_config.max_length}")
    )
    out = {}
    for eval_set in test_sets:
        # the rows kept (data.kept_rows), in the words the training card and log use
        how = ["whole set" if eval_set.whole else eval_set.sample, f"inputs cut at {args.max_source_length} tokens"]
        if TASKS[eval_set.task].generates:
            how.append(beam)
        entry = {"rows": sets[eval_set.name]["rows"], "settings": "; ".join(how)}
        if "groups" in sets[eval_set.name]:
            metric = TASKS[eval_set.task].grouped_metric
            groups = sets[eval_set.name]["groups"].items()
            entry["group_column"] = args.group_column
            entry["groups"] = {value: {"score": g[metric], "rows": g["rows"]} for value, g in groups}
        out[f"{eval_set.name}/{eval_set.data_split}"] = entry
    return out


def write_predictions(path: str, sets: list[EvalSet], predictions: dict[str, list]) -> None:
    """One JSON line per scored row: set, row (its number in the set's source, from 0), the input text, the prediction
    and the reference."""
    with atomic_file(path) as f:
        for eval_set in sets:
            rows = zip(eval_set.row_numbers, eval_set.inputs, predictions[eval_set.name], eval_set.references)
            for row, text, prediction, reference in rows:
                record = {"set": eval_set.name, "row": row, "input": text, "prediction": prediction}
                f.write(json.dumps({**record, "reference": reference}, ensure_ascii=False) + "\n")


def write_json(path: str, args, model, sets: dict[str, dict], results: list[SetResult]) -> None:
    settings = dataclasses.asdict(args)  # the command's own options (the derived data arguments are no field)
    report = {
        "model": args.model,
        "revision": args.revision,
        "settings": settings,
        "generation": effective_generation(args, model),  # what the translations were made with, defaults included
        "signatures": signatures(results) or None,
        "sets": sets,
        "metrics": metric_keys(results, "test"),
    }
    with atomic_file(path) as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")


# ---- the command ---------------------------------------------------------------------------------------------------


def load_model(args):
    """The tokenizer and config first (cheap, and the data needs the tokenizer), then the test sets, then the weights:
    a bad file or column stops the run before the model is loaded."""
    hub = {"revision": args.revision, "trust_remote_code": True}
    config = load_named(lambda: AutoConfig.from_pretrained(args.model, **hub), args.model)
    if not hasattr(config, "check_tokenizer"):
        raise ValueError(f"{args.model} is not a multitask-bert model (its config is a {type(config).__name__})")
    untrained = untrained_tasks(config, [task for task in TASKS if getattr(args.data, f"{task}_test")])
    if untrained:
        raise ValueError(
            f"--{untrained[0]}_test: {args.model} has no trained {untrained[0]} head ({UNTRAINED_WHY}): leave its "
            "test sets out"
        )
    tokenizer = AutoTokenizer.from_pretrained(args.model, **hub)
    config.check_tokenizer(tokenizer)
    if args.max_source_length is None:  # known now: the default within the model's positions, for every set
        positions = config.encoder.max_position_embeddings
        args.max_source_length = args.data.max_source_length = min(SOURCE_LENGTH, positions)
    limits = [
        ("max_source_length", args.max_source_length, "encoder"),
        ("max_new_tokens", args.max_new_tokens, "decoder"),
    ]
    check_lengths(config, limits)  # else a set too long for the model stops the run after the sets before it
    data = load_task_data(args.data, tokenizer, config.label2id)
    groups = all_group_values(
        data.test, args.group_column
    )  # a group column no set has is a bad argument: said before the model
    model = AutoModel.from_pretrained(args.model, config=config, **hub).eval()
    model.config.check_tokenizer(tokenizer)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer, data.test, groups


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Score every test set; returns the results per set (what `--output_json` holds under "sets")."""
    (args,) = HfArgumentParser(EvaluateArguments).parse_args_into_dataclasses(args=argv)
    model, tokenizer, test_sets, groups = load_model(args)
    results, sets, predictions = [], {}, {}
    for test_set in test_sets:
        result, predictions[test_set.name] = score(model, tokenizer, test_set, args)
        grouped = groups.get(test_set.name)
        if grouped is not None:
            grouped = group_scores(test_set.task, predictions[test_set.name], test_set.references, grouped)
        results.append(result)
        sets[test_set.name] = set_entry(result, grouped)
    print(table(sets, args.group_column))
    if args.predictions is not None:
        write_predictions(args.predictions, test_sets, predictions)
        print(f"Wrote {args.predictions}", file=sys.stderr)
    if args.output_json is not None:
        write_json(args.output_json, args, model, sets, results)
        print(f"Wrote {args.output_json}", file=sys.stderr)
    if args.add_to_card:
        entries = eval_results(results)
        add_eval_results(args.model, entries, scored_with=scored_with(args, model, test_sets, sets))
        print(f"Added {len(entries)} result(s) to {Path(args.model) / 'README.md'}", file=sys.stderr)
    return sets


def cli(argv: list[str] | None = None) -> int:
    """The exit status: 0 when every set was scored, 2 when the run could not start or stopped (a bad file, setting
    or model: the message says which)."""
    try:
        main(argv)
    except (ValueError, OSError) as err:
        print(f"evaluate_model.py: error: {err}", *getattr(err, "__notes__", ()), sep="\n", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    configure_logging()
    sys.exit(cli())
