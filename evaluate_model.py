"""Evaluation command: score a saved model folder or a Hub model on sentiment and translation test sets.

    python evaluate_model.py --model outputs/multitask-bert --sentiment_test ../shared/data/sst2/validation.jsonl \\
        --translation_test ../shared/data/ntrex128_en_mr/test.jsonl --output_json results.json --add_to_card true
    python evaluate_model.py --model you/multitask-bert --revision <commit> --sentiment_test nyu-mll/glue \\
        --sentiment_dataset_config sst2 --sentiment_test_split validation --max_samples 500

Test sets are read and checked by `data.py` exactly as training reads its `--*_test` sets (the same column options and
the same errors). Sentiment is the argmax of the model's sentiment logits; translation is beam search, decoded as
training's evaluation decodes it; the scores come from the `evaluate` module `metrics.py`, whose functions training
scores with. `--group_column` adds the sentiment accuracy per value of that column (e.g. a `domain` column).

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
from dataclasses import dataclass, field
from pathlib import Path

import evaluate
import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer, HfArgumentParser

import metrics
from atomic import atomic_file
from data import DataArguments, EvalSet, load_split, load_task_data, shown
from model_card import add_eval_results, eval_results, is_local

METRICS_MODULE = metrics.__file__  # loaded by path: works offline, and is the file training imports
GROUP_MISSING = "(missing)"  # how a row without a group value is counted
ADAPTER = "adapter_config.json"  # in a LoRA run's per-task adapter folders
logger = logging.getLogger(__name__)


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "a saved model folder or a Hub id"})
    revision: str | None = field(default=None, metadata={"help": "Hub revision (commit) of the model and its code"})
    sentiment_test: list[str] | None = field(
        default=None, metadata={"help": "sentiment test sets: .csv/.tsv/.json/.jsonl files or Hub dataset ids"}
    )
    translation_test: list[str] | None = field(
        default=None, metadata={"help": "English–Marathi test sets: files or Hub dataset ids"}
    )
    sentiment_dataset_config: str | None = field(default=None, metadata={"help": "Hub config, e.g. 'sst2'"})
    sentiment_test_split: str = field(default="test", metadata={"help": "split of Hub sentiment sets"})
    translation_dataset_config: str | None = field(default=None, metadata={"help": "Hub config"})
    translation_test_split: str = field(default="test", metadata={"help": "split of Hub translation sets"})
    text_column: str = field(default="text", metadata={"help": "column of the English text to classify"})
    label_column: str = field(default="label", metadata={"help": "column of the label: a name or a class id"})
    source_column: str = field(default="en", metadata={"help": "column of the English source ('translation.en')"})
    target_column: str = field(default="mr", metadata={"help": "column of the Marathi reference"})
    group_column: str | None = field(
        default=None, metadata={"help": "also give the sentiment accuracy per value of this column, e.g. 'domain'"}
    )
    max_samples: int | None = field(default=None, metadata={"help": "score the first N rows of each set"})
    max_source_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens (as training)"})
    batch_size: int = field(default=32, metadata={"help": "sentences per batch"})
    num_beams: int = field(default=4, metadata={"help": "beams for translation"})
    max_new_tokens: int = field(default=128, metadata={"help": "longest translation, in tokens"})
    length_penalty: float | None = field(
        default=None, metadata={"help": "beam search's length penalty (the model's generation_config when unset)"}
    )
    no_repeat_ngram_size: int | None = field(
        default=None, metadata={"help": "forbid repeating any n-gram of this size (the model's default when unset)"}
    )
    predictions: str | None = field(
        default=None, metadata={"help": "write every prediction with its source and reference to this JSONL file"}
    )
    output_json: str | None = field(default=None, metadata={"help": "write the results to this JSON file"})
    add_to_card: bool = field(
        default=False, metadata={"help": "add the scores to the model-index of the folder's README.md (local only)"}
    )

    def __post_init__(self):
        for name in ("batch_size", "num_beams", "max_new_tokens", "max_source_length", "max_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.data = data_arguments(self)  # checks the sources as training does
        if not (self.data.sentiment_test or self.data.translation_test):
            raise ValueError("give at least one test set: --sentiment_test and/or --translation_test")
        if self.add_to_card and not (is_local(self.model) and os.path.isfile(os.path.join(self.model, "config.json"))):
            raise ValueError(
                f"--add_to_card writes into a local model folder's README.md; {self.model} is not one (a Hub "
                "model's card is changed by pushing a new README.md)"
            )
        adapters = [t for t in ("sentiment", "translation") if os.path.isfile(os.path.join(self.model, t, ADAPTER))]
        if adapters:  # AutoModel would load the base without them and score it silently
            raise ValueError(
                f"{self.model} holds LoRA adapters ({', '.join(adapters)}): this command scores plain models; "
                "evaluate the merged-<task> folder that train.py --merge_adapter writes"
            )
        if self.output_json is not None and os.path.isdir(self.output_json):
            raise IsADirectoryError(f"--output_json {self.output_json} is a folder; give a file name")


def data_arguments(args: EvaluateArguments) -> DataArguments:
    """Training's data arguments with test sets only: `data.py` loads and checks them as it loads training's."""
    return DataArguments(
        sentiment_train=None,
        sentiment_validation=None,
        sentiment_test=args.sentiment_test,
        sentiment_dataset_config=args.sentiment_dataset_config,
        sentiment_test_split=args.sentiment_test_split,
        text_column=args.text_column,
        label_column=args.label_column,
        translation_train=None,
        translation_validation=None,
        translation_test=args.translation_test,
        translation_dataset_config=args.translation_dataset_config,
        translation_test_split=args.translation_test_split,
        source_column=args.source_column,
        target_column=args.target_column,
        max_source_length=args.max_source_length,
        max_test_samples=args.max_samples,
    )


def raw_split(eval_set: EvalSet, args: EvaluateArguments):
    """A test set's rows as read, before `data.py` keeps only what the model reads and its references."""
    source, data, task = eval_set.source, args.data, eval_set.task
    config, split = getattr(data, f"{task}_dataset_config"), getattr(data, f"{task}_test_split")
    return load_split(source.location, config, split, source.what)


def group_values(raw, column: str, rows: int) -> list[str]:
    """The group of each scored row: `data.py` keeps a test set's first rows, in file order."""
    return [GROUP_MISSING if v is None else str(v) for v in raw.select(range(rows))[column]]


def all_group_values(sets: list[EvalSet], args: EvaluateArguments) -> dict[str, list[str]]:
    """Set name -> group of each row, for the sentiment sets that have the group column. Sets without it are scored
    as a whole (of several sets, only some may have, say, a domain); no set having it is an error."""
    column, sentiment = args.group_column, [s for s in sets if s.task == "sentiment"]
    if not column:
        return {}
    if not sentiment:
        raise ValueError(f"--group_column {column} groups sentiment rows: give a --sentiment_test set")
    raws = {s.name: raw_split(s, args) for s in sentiment}
    having = [s for s in sentiment if column in raws[s.name].column_names]
    if not having:
        found = "; ".join(f"{s.name}: {', '.join(raws[s.name].column_names)}" for s in sentiment)
        raise ValueError(f"--group_column {column!r}: no sentiment test set has that column (columns: {found})")
    for s in sentiment:
        if s not in having:
            logger.warning("sentiment test data %s has no column %r: scored as a whole", s.name, column)
    return {s.name: group_values(raws[s.name], column, len(s.references)) for s in having}


# ---- predictions ---------------------------------------------------------------------------------------------------


def batches(eval_set: EvalSet, tokenizer, batch_size: int, device: torch.device):
    """(rows, padded inputs) in batches of similar lengths, longest first (a memory problem shows at once); callers
    put each prediction back at its row."""
    ids, masks = eval_set.dataset["input_ids"], eval_set.dataset["attention_mask"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = tokenizer.pad([{"input_ids": ids[i], "attention_mask": masks[i]} for i in rows], return_tensors="pt")
        yield rows, {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def predict_sentiment(model, tokenizer, eval_set: EvalSet, args: EvaluateArguments, bar) -> list[int]:
    predictions = [0] * len(eval_set.references)
    for rows, batch in batches(eval_set, tokenizer, args.batch_size, model.device):
        for row, label in zip(rows, model(**batch).sentiment_logits.argmax(-1).tolist()):
            predictions[row] = label
        bar.update(len(rows))
    return predictions


def generation_settings(args: EvaluateArguments) -> dict:
    """The beam search settings given; the others come from the model's generation_config.json."""
    settings = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens}
    settings.update({k: getattr(args, k) for k in ("length_penalty", "no_repeat_ngram_size") if getattr(args, k)})
    return settings


@torch.no_grad()
def translate(model, tokenizer, eval_set: EvalSet, args: EvaluateArguments, bar) -> list[str]:
    hypotheses = [""] * len(eval_set.references)
    for rows, batch in batches(eval_set, tokenizer, args.batch_size, model.device):
        generated = model.generate(**batch, **generation_settings(args))
        # decoded as MultitaskTrainer.evaluate_translation decodes, so that both score the same text
        for row, text in zip(rows, tokenizer.batch_decode(generated, skip_special_tokens=True)):
            hypotheses[row] = text.strip()
        bar.update(len(rows))
    return hypotheses


# ---- scores --------------------------------------------------------------------------------------------------------


def score_set(model, tokenizer, eval_set: EvalSet, args: EvaluateArguments, groups: list[str] | None):
    """One set's result: its scores (and signatures; accuracy per group where `groups` gives each row's), from the
    `evaluate` module."""
    scorer = evaluate.load(METRICS_MODULE, config_name=eval_set.task, keep_in_memory=True)
    with tqdm(total=len(eval_set.references), desc=f"{eval_set.name} ({eval_set.task})", unit="row") as bar:
        if eval_set.task == "sentiment":
            predictions = predict_sentiment(model, tokenizer, eval_set, args, bar)
        else:
            predictions = translate(model, tokenizer, eval_set, args, bar)
    scores = scorer.compute(predictions=predictions, references=eval_set.references)
    signatures = scores.pop("signatures", None)
    result = {"task": eval_set.task, "source": shown(eval_set.source.location), "rows": len(eval_set.references)}
    result["scores"] = scores
    if signatures is not None:
        result["signatures"] = signatures
    if groups is not None:
        result["groups"] = group_scores(scorer, predictions, eval_set.references, groups)
    return result, predictions


def group_scores(scorer, predictions: list[int], references: list[int], groups: list[str]) -> dict[str, dict]:
    """Accuracy and rows per group value."""
    out = {}
    for value in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == value]
        scores = scorer.compute(predictions=[predictions[i] for i in rows], references=[references[i] for i in rows])
        out[value] = {"accuracy": scores["accuracy"], "rows": len(rows)}
    return out


def flat_metrics(sets: dict[str, dict]) -> dict[str, float]:
    """`test_<set>_<metric>`, as training names its test scores (and the model card reads them)."""
    return {f"test_{name}_{k}": v for name, result in sets.items() for k, v in result["scores"].items()}


def table(sets: dict[str, dict], group_column: str | None) -> str:
    """The results as an aligned Markdown table, then the sacreBLEU signatures."""
    rows = [("set", "task", "metric", "value", "rows")]
    for name, result in sets.items():
        rows += [(name, result["task"], k, f"{v:g}", str(result["rows"])) for k, v in result["scores"].items()]
        for value, group in result.get("groups", {}).items():
            metric = f"accuracy {group_column}={value}"
            rows.append((name, result["task"], metric, f"{group['accuracy']:g}", str(group["rows"])))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    signatures = next((r["signatures"] for r in sets.values() if "signatures" in r), {})
    lines += [f"sacreBLEU {name}: {signature}" for name, signature in signatures.items()]
    return "\n".join(lines)


def write_predictions(path: str, args: EvaluateArguments, sets: list[EvalSet], predictions: dict[str, list]) -> None:
    """One JSON line per scored row: set, row, the input text, the prediction and the reference."""
    with atomic_file(path) as f:
        for eval_set in sets:
            column = args.text_column if eval_set.task == "sentiment" else args.source_column
            texts = raw_split(eval_set, args).select(range(len(eval_set.references)))[column]
            for row, (text, prediction, reference) in enumerate(
                zip(texts, predictions[eval_set.name], eval_set.references)
            ):
                record = {"set": eval_set.name, "row": row, "input": text, "prediction": prediction}
                f.write(json.dumps({**record, "reference": reference}, ensure_ascii=False) + "\n")


def write_json(path: str, args: EvaluateArguments, sets: dict[str, dict]) -> None:
    settings = dataclasses.asdict(args)  # the command's own options (the derived data arguments are no field)
    signatures = next((r["signatures"] for r in sets.values() if "signatures" in r), None)
    report = {
        "model": args.model,
        "revision": args.revision,
        "settings": settings,
        "signatures": signatures,
        "sets": sets,
        "metrics": flat_metrics(sets),
    }
    with atomic_file(path) as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")


# ---- the command ---------------------------------------------------------------------------------------------------


def load_model(args: EvaluateArguments):
    """The tokenizer and config first (cheap, and the data needs the tokenizer), then the test sets, then the weights:
    a bad file or column stops the run before the model is loaded."""
    hub = {"revision": args.revision, "trust_remote_code": True}
    tokenizer = AutoTokenizer.from_pretrained(args.model, **hub)
    config = AutoConfig.from_pretrained(args.model, **hub)
    if not hasattr(config, "check_tokenizer"):
        raise ValueError(f"{args.model} is not a multitask-bert model (its config is a {type(config).__name__})")
    config.check_tokenizer(tokenizer)
    data = load_task_data(args.data, tokenizer, config.label2id)
    groups = all_group_values(data.test, args)  # a group column no set has is a bad argument: said before the model
    model = AutoModel.from_pretrained(args.model, config=config, **hub).eval()
    model.config.check_tokenizer(tokenizer)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer, data.test, groups


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Score every test set; returns the results per set (what `--output_json` holds under "sets")."""
    (args,) = HfArgumentParser(EvaluateArguments).parse_args_into_dataclasses(args=argv)
    model, tokenizer, test_sets, groups = load_model(args)
    sets, predictions = {}, {}
    for test_set in test_sets:
        sets[test_set.name], predictions[test_set.name] = score_set(
            model, tokenizer, test_set, args, groups.get(test_set.name)
        )
    print(table(sets, args.group_column))
    if args.predictions is not None:
        write_predictions(args.predictions, args, test_sets, predictions)
        print(f"Wrote {args.predictions}", file=sys.stderr)
    if args.output_json is not None:
        write_json(args.output_json, args, sets)
        print(f"Wrote {args.output_json}", file=sys.stderr)
    if args.add_to_card:
        results = eval_results(flat_metrics(sets), [("test", name, r["task"]) for name, r in sets.items()])
        add_eval_results(args.model, results)
        print(f"Added {len(results)} result(s) to {Path(args.model) / 'README.md'}", file=sys.stderr)
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
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    sys.exit(cli())
