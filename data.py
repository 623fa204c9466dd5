"""Task data: load each task's splits from local files or the Hub, check them, tokenize them.

A source is a local file (`.csv`, `.tsv`, `.json`, `.jsonl`) or a Hub dataset id (with `*_dataset_config` and a split
name). Every check runs before training starts, and every error names the file and the column.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset
from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
LOCAL_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


@dataclass
class DataArguments:
    """Where each task's data comes from. Defaults: the small demo set shipped in `demo_data/` (CC0)."""

    sentiment_train: str = field(
        default=str(DEMO_DATA / "sentiment_train.jsonl"),
        metadata={"help": "sentiment training data: a .csv/.tsv/.json/.jsonl file or a Hub dataset id"},
    )
    sentiment_validation: str | None = field(
        default=str(DEMO_DATA / "sentiment_validation.jsonl"),
        metadata={"help": "sentiment validation data (file or Hub id); none to skip sentiment evaluation"},
    )
    sentiment_dataset_config: str | None = field(default=None, metadata={"help": "Hub config, e.g. 'sst2'"})
    sentiment_train_split: str = field(default="train", metadata={"help": "split of a Hub dataset"})
    sentiment_validation_split: str = field(default="validation", metadata={"help": "split of a Hub dataset"})
    text_column: str = field(default="text", metadata={"help": "column of the English text to classify"})
    label_column: str = field(default="label", metadata={"help": "column of the label: a name or a class id"})

    translation_train: str = field(
        default=str(DEMO_DATA / "translation_train.jsonl"),
        metadata={"help": "English–Marathi training pairs: a .csv/.tsv/.json/.jsonl file or a Hub dataset id"},
    )
    translation_validation: str | None = field(
        default=str(DEMO_DATA / "translation_validation.jsonl"),
        metadata={"help": "translation validation pairs (file or Hub id); none to skip translation evaluation"},
    )
    translation_dataset_config: str | None = field(default=None, metadata={"help": "Hub config"})
    translation_train_split: str = field(default="train", metadata={"help": "split of a Hub dataset"})
    translation_validation_split: str = field(default="validation", metadata={"help": "split of a Hub dataset"})
    translation_test: str | None = field(
        default=None,
        metadata={
            "help": "comma-separated extra translation test sets (files or Hub ids), scored once after training, "
            "e.g. NTREX-128"
        },
    )
    translation_test_split: str = field(default="test", metadata={"help": "split of Hub test sets"})
    source_column: str = field(
        default="en", metadata={"help": "column of the English source; nested Hub columns as 'translation.en'"}
    )
    target_column: str = field(default="mr", metadata={"help": "column of the Marathi target"})

    max_source_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    max_target_length: int = field(default=128, metadata={"help": "truncate translation targets to this many tokens"})
    max_train_samples: int | None = field(default=None, metadata={"help": "keep the first N training rows per task"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "keep the first N validation rows per task"})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "processes for tokenization"})

    def __post_init__(self):
        for name in ("max_source_length", "max_target_length", "max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.sentiment_validation in ("", "none", "None"):
            self.sentiment_validation = None
        if self.translation_validation in ("", "none", "None"):
            self.translation_validation = None


def load_split(source: str, dataset_config: str | None, split: str, what: str) -> Dataset:
    """One split from a local file or the Hub, nested columns flattened ('translation.en')."""
    path = Path(source)
    if path.suffix.lower() in LOCAL_FORMATS or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{what}: file {source!r} does not exist")
        builder = LOCAL_FORMATS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"{what}: {source!r} is not a .csv, .tsv, .json or .jsonl file")
        if not path.read_bytes().strip():
            raise ValueError(f"{what} {source!r} is empty")
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        try:
            dataset = load_dataset(builder, data_files=str(path), split="train", **kwargs)
        except Exception as err:  # a parse error deep inside datasets: name the file
            raise ValueError(f"{what}: cannot read {source!r} as {builder}: {err}") from err
    else:
        try:
            dataset = load_dataset(source, dataset_config, split=split)
        except Exception as err:  # the Hub client raises many types; name the source whatever went wrong
            raise ValueError(
                f"{what}: cannot load {source!r} (config {dataset_config!r}, split {split!r}): {err}"
            ) from err
    return dataset.flatten()


def check_columns(dataset: Dataset, columns: list[str], source: str, what: str) -> None:
    """Every column exists, the split has rows, no text is empty."""
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
        elif isinstance(value, int) and not isinstance(value, bool) and value in id2label:
            ids.append(value)
        else:
            known = ", ".join(f"{name} ({i})" for name, i in label2id.items())
            raise ValueError(f"{source!r}, column {column!r}, row {row}: unknown label {value!r} (known: {known})")
    return ids


def prepare_sentiment(dataset, source, args: DataArguments, tokenizer, label2id, max_samples, what) -> Dataset:
    check_columns(dataset, [args.text_column, args.label_column], source, what)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    check_texts(dataset, args.text_column, source, what)
    labels = label_ids(dataset[args.label_column], label2id, source, args.label_column)
    dataset = dataset.remove_columns([c for c in dataset.column_names if c != args.text_column])
    dataset = dataset.add_column("labels", labels)

    def tokenize(batch):
        return tokenizer(batch[args.text_column], truncation=True, max_length=args.max_source_length)

    return dataset.map(
        tokenize,
        batched=True,
        num_proc=args.preprocessing_num_workers,
        remove_columns=[args.text_column],
        desc=f"Tokenizing {what}",
    )


def prepare_translation(dataset, source, args: DataArguments, tokenizer, max_samples, what) -> Dataset:
    check_columns(dataset, [args.source_column, args.target_column], source, what)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    check_texts(dataset, args.source_column, source, what)
    check_texts(dataset, args.target_column, source, what)

    def tokenize(batch):
        features = tokenizer(batch[args.source_column], truncation=True, max_length=args.max_source_length)
        targets = tokenizer(text_target=batch[args.target_column], truncation=True, max_length=args.max_target_length)
        features["labels"] = targets["input_ids"]
        return features

    return dataset.map(
        tokenize,
        batched=True,
        num_proc=args.preprocessing_num_workers,
        remove_columns=dataset.column_names,
        desc=f"Tokenizing {what}",
    )


def load_task_data(
    args: DataArguments, tokenizer: PreTrainedTokenizerBase, label2id: dict[str, int]
) -> tuple[dict[str, Dataset], dict[str, Dataset], dict[str, list[str]]]:
    """Tokenized train and validation sets per task, and the raw validation references (for BLEU/chrF++).

    Run it under `TrainingArguments.main_process_first()`: the first process tokenizes and fills the datasets cache,
    the others read it.
    """
    train, validation, references = {}, {}, {}
    splits = {
        "sentiment": (
            (args.sentiment_train, args.sentiment_train_split, args.max_train_samples, train),
            (args.sentiment_validation, args.sentiment_validation_split, args.max_eval_samples, validation),
        ),
        "translation": (
            (args.translation_train, args.translation_train_split, args.max_train_samples, train),
            (args.translation_validation, args.translation_validation_split, args.max_eval_samples, validation),
        ),
    }
    for task, task_splits in splits.items():
        config = args.sentiment_dataset_config if task == "sentiment" else args.translation_dataset_config
        for source, split, max_samples, out in task_splits:
            if source is None:
                continue
            what = f"{task} {'train' if out is train else 'validation'} data"
            raw = load_split(source, config, split, what)
            if task == "sentiment":
                out[task] = prepare_sentiment(raw, source, args, tokenizer, label2id, max_samples, what)
            else:
                out[task] = prepare_translation(raw, source, args, tokenizer, max_samples, what)
                if out is validation:
                    n = len(out[task])
                    references[task] = list(raw.select(range(n))[args.target_column])
            logger.info("%s: %d rows from %s", what, len(out[task]), source)
    return train, validation, references


def eval_set_name(source: str) -> str:
    """'../shared/data/ntrex128_en_mr/test.jsonl' -> 'ntrex128_en_mr'; 'org/dataset' -> 'dataset'."""
    path = Path(source)
    name = path.parent.name if path.stem in ("test", "valid", "validation", "dev") and path.parent.name else path.stem
    return name.replace("-", "_").replace(".", "_")


def load_translation_tests(args: DataArguments, tokenizer: PreTrainedTokenizerBase) -> dict[str, tuple[Dataset, list]]:
    """Each extra test set, tokenized, with its raw references (capped by `max_eval_samples`)."""
    tests = {}
    for source in filter(None, (s.strip() for s in (args.translation_test or "").split(","))):
        what = "translation test data"
        raw = load_split(source, args.translation_dataset_config, args.translation_test_split, what)
        dataset = prepare_translation(raw, source, args, tokenizer, args.max_eval_samples, what)
        tests[eval_set_name(source)] = (dataset, list(raw.select(range(len(dataset)))[args.target_column]))
        logger.info("%s: %d rows from %s", what, len(dataset), source)
    return tests
