"""Task data: each task's training, validation and test sources, checked, tokenized and named.

A source is a local file (`.csv`, `.tsv`, `.json`, `.jsonl`) or a Hub dataset id (with `*_dataset_config` and a split
name). A task may have several training sources, each with a mixing weight (how many passes over it one epoch makes:
2 repeats it, 0.25 draws a fresh quarter of it every epoch), and several validation and test sets, each scored on its
own. Every check runs before training starts, and every error names the file, the column and the row.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset, concatenate_datasets, load_dataset
from pyarrow.lib import ArrowException
from transformers import PreTrainedTokenizerBase

from tables import SUFFIXES, read_table

logger = logging.getLogger(__name__)

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
NONE = ("", "none", "None")
MAX_SAMPLES = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_test_samples"}


def _sources(demo_file: str, help: str):
    """A list-of-sources argument whose default is a file of the demo set."""
    return field(default_factory=lambda: [str(DEMO_DATA / demo_file)], metadata={"help": help})


@dataclass
class DataArguments:
    """Where each task's data comes from. Defaults: the small demo set shipped in `demo_data/` (CC0)."""

    sentiment_train: list[str] = _sources(
        "sentiment_train.jsonl", "sentiment training sources: .csv/.tsv/.json/.jsonl files or Hub dataset ids"
    )
    sentiment_train_weights: list[float] | None = field(
        default=None, metadata={"help": "one mixing weight per sentiment training source (passes per epoch); 1 each"}
    )
    sentiment_validation: list[str] | None = _sources(
        "sentiment_validation.jsonl", "sentiment validation sets (files or Hub ids); 'none' to skip"
    )
    sentiment_test: list[str] | None = field(
        default=None, metadata={"help": "sentiment test sets (files or Hub ids), scored once after training"}
    )
    sentiment_dataset_config: str | None = field(default=None, metadata={"help": "Hub config, e.g. 'sst2'"})
    sentiment_train_split: str = field(default="train", metadata={"help": "split of a Hub dataset"})
    sentiment_validation_split: str = field(default="validation", metadata={"help": "split of a Hub dataset"})
    sentiment_test_split: str = field(default="test", metadata={"help": "split of Hub test sets"})
    text_column: str = field(default="text", metadata={"help": "column of the English text to classify"})
    label_column: str = field(default="label", metadata={"help": "column of the label: a name or a class id"})

    translation_train: list[str] = _sources(
        "translation_train.jsonl", "English–Marathi training sources: .csv/.tsv/.json/.jsonl files or Hub dataset ids"
    )
    translation_train_weights: list[float] | None = field(
        default=None, metadata={"help": "one mixing weight per translation training source (passes per epoch)"}
    )
    translation_train_concat: list[int] | None = field(
        default=None,
        metadata={
            "help": "per translation training source, how many of its pairs are joined into one example (1: as they "
            "are). Joined short pairs teach long sentences: a model trained on short pairs alone loops or stops "
            "early on long input. List a source twice to have it both plain and joined"
        },
    )
    translation_validation: list[str] | None = _sources(
        "translation_validation.jsonl", "translation validation sets (files or Hub ids); 'none' to skip"
    )
    translation_test: list[str] | None = field(
        default=None, metadata={"help": "translation test sets (files or Hub ids), scored once after training"}
    )
    translation_dataset_config: str | None = field(default=None, metadata={"help": "Hub config"})
    translation_train_split: str = field(default="train", metadata={"help": "split of a Hub dataset"})
    translation_validation_split: str = field(default="validation", metadata={"help": "split of a Hub dataset"})
    translation_test_split: str = field(default="test", metadata={"help": "split of Hub test sets"})
    source_column: str = field(
        default="en", metadata={"help": "column of the English source; nested Hub columns as 'translation.en'"}
    )
    target_column: str = field(default="mr", metadata={"help": "column of the Marathi target"})

    max_source_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    max_target_length: int = field(default=128, metadata={"help": "truncate translation targets to this many tokens"})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "keep the first N rows of each training source"}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "keep the first N rows of each validation set (scored at every evaluation)"}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "keep the first N rows of each test set (scored once, after training)"}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "processes for tokenization"})

    def __post_init__(self):
        for name in ("max_source_length", "max_target_length", *MAX_SAMPLES.values()):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        for task in ("sentiment", "translation"):
            for role in ("train", "validation", "test"):
                setattr(self, f"{task}_{role}", _source_list(getattr(self, f"{task}_{role}")))
            self._check_weights(task)
        self._check_concat()

    def _check_weights(self, task: str) -> None:
        sources, weights = getattr(self, f"{task}_train"), getattr(self, f"{task}_train_weights")
        if weights is None:
            return
        if isinstance(weights, (int, float)):  # one number from a JSON/YAML file
            weights = [float(weights)]
            setattr(self, f"{task}_train_weights", weights)
        if len(weights) != len(sources or []):
            raise ValueError(
                f"{task}_train_weights gives {len(weights)} weight(s) for {len(sources or [])} {task}_train source(s)"
            )
        if any(w < 0 for w in weights) or (weights and not any(weights)):
            raise ValueError(f"{task}_train_weights must be non-negative and not all 0, got {weights}")

    def _check_concat(self) -> None:
        concat, sources = self.translation_train_concat, self.translation_train or []
        if concat is None:
            return
        if isinstance(concat, int):  # one number from a JSON/YAML file
            concat = self.translation_train_concat = [concat]
        if len(concat) != len(sources):
            raise ValueError(
                f"translation_train_concat gives {len(concat)} value(s) for {len(sources)} translation_train source(s)"
            )
        if any(k < 1 for k in concat):
            raise ValueError(f"translation_train_concat values must be at least 1, got {concat}")

    def sources(self, task: str, role: str) -> list["Source"]:
        """The sources of one task and role, named and weighted."""
        locations = _source_list(getattr(self, f"{task}_{role}")) or []  # also after an attribute was set to one str
        weights = (getattr(self, f"{task}_train_weights") if role == "train" else None) or [1.0] * len(locations)
        concat = (self.translation_train_concat if (task, role) == ("translation", "train") else None) or []
        concat = concat or [1] * len(locations)
        names = [set_name(location) + (f"_x{k}" if k > 1 else "") for location, k in zip(locations, concat)]
        return [
            Source(task, role, location, name, weight, k)
            for location, name, weight, k in zip(locations, unique_names(names), weights, concat)
        ]


def _source_list(value) -> list[str] | None:
    """`None`, 'none', one source or a list of sources -> a list of sources, or None."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    values = [v.strip() for v in values if v.strip() not in NONE]
    return values or None


@dataclass(frozen=True)
class Source:
    task: str
    role: str  # "train", "validation" or "test"
    location: str  # a file path or a Hub dataset id
    name: str  # how logs, metrics and the card call it
    weight: float = 1.0
    concat: int = 1  # pairs joined into one example

    @property
    def what(self) -> str:
        return f"{self.task} {self.role} data"


@dataclass
class EvalSet:
    """A validation or test set: tokenized rows and, in the same order, what a prediction is scored against
    (class ids for sentiment, reference translations for translation)."""

    name: str
    task: str
    dataset: Dataset
    references: list
    source: Source


@dataclass
class TaskData:
    """Training rows per task (each task's sources one after the other), with each source's row count and weight in
    that order, and the evaluation sets."""

    train: dict[str, Dataset]
    train_sources: dict[str, list[tuple[Source, int]]]
    validation: list[EvalSet]
    test: list[EvalSet]

    def source_weights(self) -> dict[str, list[tuple[int, float]]]:
        """Per task, (rows, weight) of each source in row order: what the batch sampler needs."""
        return {task: [(rows, s.weight) for s, rows in parts] for task, parts in self.train_sources.items()}


def set_name(source: str) -> str:
    """'../shared/data/ntrex128_en_mr/test.jsonl' -> 'ntrex128_en_mr'; 'org/dataset' -> 'dataset'."""
    path = Path(source)
    generic = ("train", "test", "valid", "validation", "dev")
    name = path.parent.name if path.stem in generic and path.parent.name else path.stem
    return name.replace("-", "_").replace(".", "_")


eval_set_name = set_name  # the name the metrics and the card use


def unique_names(names: list[str]) -> list[str]:
    """Two sources with one name (two folders' test.jsonl) get suffixes, so that no metric overwrites another."""
    seen, out = Counter(), []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def shown(source: str) -> str:
    """A source as logs show it: a file by its folder and name (a local absolute path says nothing to a reader)."""
    path = Path(source)
    if path.suffix.lower() in SUFFIXES or path.exists():
        return str(Path(path.parent.name) / path.name) if path.parent.name else path.name
    return source


def load_split(source: str, dataset_config: str | None, split: str, what: str) -> Dataset:
    """One split from a local file or the Hub, nested columns flattened ('translation.en')."""
    path = Path(source)
    if path.suffix.lower() in SUFFIXES or path.exists():
        dataset = load_local(path, what)
    else:
        try:
            dataset = load_dataset(source, dataset_config, split=split)
        except Exception as err:  # the Hub client raises many types; name the source whatever went wrong
            raise ValueError(
                f"{what}: cannot load {source!r} (config {dataset_config!r}, split {split!r}): {err}"
            ) from err
    return dataset.flatten()


def load_local(path: Path, what: str) -> Dataset:
    """A local file through the project's one reader (`tables.py`, which prediction uses too): every line of a .tsv is
    one row, a bad row stops the run naming its line, blank lines are skipped."""
    try:
        records = read_table(path).records(skip_empty_lines=True)
    except (ValueError, OSError) as err:
        raise type(err)(f"{what}: {err}") from err
    if not records:
        raise ValueError(f"{what} {str(path)!r} is empty")
    try:
        return Dataset.from_list(uniform_types(records))
    except (ValueError, TypeError, ArrowException) as err:  # e.g. a column holding numbers in some rows, text in others
        raise ValueError(f"{what}: cannot make a table of {str(path)!r}: {err}") from err


def uniform_types(records: list[dict]) -> list[dict]:
    """A column whose values mix types (label names and class ids, say) as text, which a table column can hold and
    `label_ids` still reads; missing fields stay missing."""
    kinds = {}
    for record in records:
        for key, value in record.items():
            if value is not None:
                kinds.setdefault(key, set()).add(type(value))
    mixed = {key for key, types in kinds.items() if len(types) > 1}
    if not mixed:
        return records
    return [{k: str(v) if k in mixed and v is not None else v for k, v in r.items()} for r in records]


def check_columns(dataset: Dataset, columns: list[str], source: str, what: str) -> None:
    """Every column exists, the split has rows."""
    for column in columns:
        if column not in dataset.column_names:
            raise ValueError(f"{what} {source!r} has no column {column!r} (columns: {', '.join(dataset.column_names)})")
    if len(dataset) == 0:
        raise ValueError(f"{what} {source!r} is empty")


def check_texts(dataset: Dataset, column: str, source: str, what: str) -> None:
    empty = [i for i, text in enumerate(dataset[column]) if not isinstance(text, str) or not text.strip()]
    if empty:
        raise ValueError(
            f"{what} {source!r}, column {column!r}: {len(empty)} empty or non-text value(s), "
            f"first at row(s) {empty[:5]}"
        )


def label_ids(values: list, label2id: dict[str, int], source: str, column: str) -> list[int]:
    """Label names or class ids -> class ids of the model's config."""
    id2label = {i: name for name, i in label2id.items()}
    ids = []
    for row, value in enumerate(values):
        if isinstance(value, str) and value in label2id:
            ids.append(label2id[value])
        elif isinstance(value, str) and value.strip().isdigit() and int(value) in id2label:  # an id read from CSV
            ids.append(int(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value in id2label:
            ids.append(value)
        else:
            known = ", ".join(f"{name} ({i})" for name, i in label2id.items())
            raise ValueError(f"{source!r}, column {column!r}, row {row}: unknown label {value!r} (known: {known})")
    return ids


def warn_if_degenerate(texts: list[str], labels: list | None, source: Source) -> None:
    """Training data that cannot teach the task (one class only, one text repeated) trains without error and
    yields a useless model: say so loudly before training starts."""
    if source.role != "train":
        return
    if len(texts) > 1 and len(set(texts)) == 1:
        logger.warning(
            "%s %s: all %d rows hold the same text; the model will learn nothing from it",
            source.what,
            shown(source.location),
            len(texts),
        )
    if labels is not None and len(labels) > 1 and len(set(labels)) == 1:
        logger.warning(
            "%s %s: every row has the same label (%r); the classifier will learn to answer only that",
            source.what,
            shown(source.location),
            labels[0],
        )


def prepare_sentiment(dataset, source: Source, args: DataArguments, tokenizer, label2id, max_samples):
    """Tokenized rows with class ids as `labels`, and those class ids (the references)."""
    location, what = source.location, source.what
    check_columns(dataset, [args.text_column, args.label_column], location, what)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    check_texts(dataset, args.text_column, location, what)
    labels = label_ids(dataset[args.label_column], label2id, location, args.label_column)
    warn_if_degenerate(dataset[args.text_column], dataset[args.label_column], source)
    dataset = dataset.remove_columns([c for c in dataset.column_names if c != args.text_column])
    dataset = dataset.add_column("labels", labels)

    def tokenize(batch):
        return tokenizer(batch[args.text_column], truncation=True, max_length=args.max_source_length)

    tokenized = dataset.map(
        tokenize,
        batched=True,
        num_proc=args.preprocessing_num_workers,
        remove_columns=[args.text_column],
        desc=f"Tokenizing {what} {source.name}",
    )
    return tokenized, labels


def prepare_translation(dataset, source: Source, args: DataArguments, tokenizer, max_samples):
    """Tokenized pairs (target ids as `labels`), and the raw target sentences of the same rows (the references)."""
    location, what = source.location, source.what
    check_columns(dataset, [args.source_column, args.target_column], location, what)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    check_texts(dataset, args.source_column, location, what)
    check_texts(dataset, args.target_column, location, what)
    warn_if_degenerate(dataset[args.source_column], None, source)
    if source.concat > 1:
        dataset = join_pairs(dataset, source.concat, [args.source_column, args.target_column])

    def tokenize(batch):
        features = tokenizer(batch[args.source_column], truncation=True, max_length=args.max_source_length)
        targets = tokenizer(text_target=batch[args.target_column], truncation=True, max_length=args.max_target_length)
        features["labels"] = targets["input_ids"]
        return features

    tokenized = dataset.map(
        tokenize,
        batched=True,
        num_proc=args.preprocessing_num_workers,
        remove_columns=dataset.column_names,
        desc=f"Tokenizing {what} {source.name}",
    )
    return tokenized, list(dataset[args.target_column])


def join_pairs(dataset: Dataset, k: int, columns: list[str], seed: int = 0) -> Dataset:
    """Every `k` pairs of a fixed shuffle joined into one (texts joined by a space): `len(dataset) // k` longer
    examples, each sentence of which is still translated one to one."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    groups = [order[i : i + k] for i in range(0, len(order) - k + 1, k)]
    texts = {column: dataset[column] for column in columns}
    return Dataset.from_dict(
        {column: [" ".join(values[i] for i in group) for group in groups] for column, values in texts.items()}
    )


def load_source(source: Source, args: DataArguments, tokenizer, label2id) -> tuple[Dataset, list]:
    """One source, loaded, checked and tokenized, with its references."""
    config = getattr(args, f"{source.task}_dataset_config")
    split = getattr(args, f"{source.task}_{source.role}_split")
    raw = load_split(source.location, config, split, source.what)
    max_samples = getattr(args, MAX_SAMPLES[source.role])
    if source.task == "sentiment":
        return prepare_sentiment(raw, source, args, tokenizer, label2id, max_samples)
    return prepare_translation(raw, source, args, tokenizer, max_samples)


def load_task_data(args: DataArguments, tokenizer: PreTrainedTokenizerBase, label2id: dict[str, int]) -> TaskData:
    """Every source of every task, tokenized: training rows per task, validation and test sets.

    Run it under `TrainingArguments.main_process_first()`: the first process tokenizes and fills the datasets cache,
    the others read it.
    """
    data = TaskData(train={}, train_sources={}, validation=[], test=[])
    for task in ("sentiment", "translation"):
        parts = []
        for source in args.sources(task, "train"):
            dataset, _ = load_source(source, args, tokenizer, label2id)
            parts.append((source, dataset))
        if parts:
            data.train[task] = concatenate_datasets([d for _, d in parts]) if len(parts) > 1 else parts[0][1]
            data.train_sources[task] = [(s, len(d)) for s, d in parts]
            log_training_mix(task, data.train_sources[task])
        for role, sets in (("validation", data.validation), ("test", data.test)):
            for source in args.sources(task, role):
                dataset, references = load_source(source, args, tokenizer, label2id)
                sets.append(EvalSet(source.name, task, dataset, references, source))
                logger.info("%s %s: %d rows from %s", source.what, source.name, len(dataset), shown(source.location))
    check_unique_eval_names(data.validation + data.test)
    return data


def check_unique_eval_names(sets: list[EvalSet]) -> None:
    """Metrics are keyed by set name: a sentiment and a translation set of one name would overwrite each other."""
    seen = {}
    for s in sets:
        key = (s.source.role, s.name)
        if key in seen:
            raise ValueError(
                f"two {s.source.role} sets are both called {s.name!r} ({shown(seen[key].location)}, "
                f"{shown(s.source.location)}): give one of them a file or folder of another name"
            )
        seen[key] = s.source


def log_training_mix(task: str, parts: list[tuple[Source, int]]) -> None:
    """Each training source with its rows, weight and share of the task's rows per epoch."""
    per_epoch = [rows * source.weight for source, rows in parts]
    total = sum(per_epoch) or 1
    for (source, rows), n in zip(parts, per_epoch):
        logger.info(
            "%s train data %s: %d rows from %s%s, weight %g -> %d rows per epoch (%.1f%% of %s)",
            task,
            source.name,
            rows,
            shown(source.location),
            f" ({source.concat} pairs joined per row)" if source.concat > 1 else "",
            source.weight,
            round(n),
            100 * n / total,
            task,
        )
