"""One data source: where it is read from, how it is named, and the checks every row passes before training starts.

A source is a local file (`.csv`, `.tsv`, `.json`, `.jsonl`, read by `tables.py`) or a Hub dataset id. Every error
names the file, the column and the row, and says what to do.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset, load_dataset
from pyarrow.lib import ArrowException

from .tables import SUFFIXES, read_table

logger = logging.getLogger(__name__)


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


def set_name(source: str) -> str:
    """'../shared/data/ntrex128_en_mr/test.jsonl' -> 'ntrex128_en_mr'; 'org/dataset' -> 'dataset' ('org/wmt.en-mr'
    -> 'wmt_en_mr': a Hub id has no file suffix to drop)."""
    path = Path(source)
    stem = path.stem if is_file(source) else path.name
    generic = ("train", "test", "valid", "validation", "dev")
    name = path.parent.name if stem in generic and path.parent.name else stem
    return name.replace("-", "_").replace(".", "_")


eval_set_name = set_name  # the name the metrics and the card use


def unique_names(names: list[str]) -> list[str]:
    """Two sources with one name (two folders' test.jsonl) get suffixes, so that no metric overwrites another; a
    suffix never takes a name another source has (`data`, `data`, `data_2` -> `data`, `data_3`, `data_2`)."""
    given, out = set(names), []
    for name in names:
        unique, k = name, 1
        while unique in out or (k > 1 and unique in given):  # a name given already, or another source's own
            k += 1
            unique = f"{name}_{k}"
        out.append(unique)
    return out


def is_file(source: str) -> bool:
    """A local file (by its suffix, or because it exists), not a Hub dataset id."""
    path = Path(source)
    return path.suffix.lower() in SUFFIXES or path.exists()


def own_split(source: str, hub_split: str) -> str:
    """The split a set is, as its data names it: a file by its name ('valid.jsonl', 'dev.jsonl',
    'sentiment_validation.jsonl': validation; otherwise test), a Hub dataset by the split read from it. The card's
    model-index files scores under it: a validation file that a run scores once at the end (its "test" role) is
    still validation data."""
    name = Path(source).stem if is_file(source) else hub_split
    words = set(re.split(r"[^a-z]+", name.lower()))
    return "validation" if words & {"val", "valid", "validation", "dev"} else "test"


def shown(source: str) -> str:
    """A source as logs show it: a file by its folder and name (a local absolute path says nothing to a reader)."""
    path = Path(source)
    if is_file(source):
        return str(Path(path.parent.name) / path.name) if path.parent.name else path.name
    return source


def load_split(source: str, dataset_config: str | None, split: str, what: str) -> tuple[Dataset, Sequence[int] | None]:
    """One split from a local file or the Hub, nested columns flattened ('translation.en'), with each row's line in a
    local file (None for the Hub)."""
    lines = None
    if is_file(source):
        dataset, lines = load_local(Path(source), what)
    else:
        try:
            dataset = load_dataset(source, dataset_config, split=split)
        except Exception as err:  # the Hub client raises many types; name the source whatever went wrong
            raise ValueError(
                f"{what}: cannot load {source!r} (config {dataset_config!r}, split {split!r}): {err}"
            ) from err
    return dataset.flatten(), lines


def places(row_numbers: Sequence[int], lines: Sequence[int] | None) -> list[str]:
    """Where each kept row is, as errors name it: a local file's line (as an editor numbers it), else the row's
    number in the split (0-based, as `dataset[i]`)."""
    return [f"line {lines[n]}" for n in row_numbers] if lines is not None else [f"row {n}" for n in row_numbers]


def load_local(path: Path, what: str) -> tuple[Dataset, list[int]]:
    """A local file through the project's one reader (`tables.py`, which prediction uses too), with each row's line:
    every line of a .tsv is one row, a bad row stops the run naming its line, blank lines are skipped."""
    try:
        rows = read_table(path).good_rows(skip_empty_lines=True)
    except (ValueError, OSError) as err:
        raise type(err)(f"{what}: {err}") from err
    if not rows:
        raise ValueError(f"{what} {str(path)!r} is empty")
    lines = [row.line for row in rows]
    records = uniform_types([row.record for row in rows], lines, f"{what} {str(path)!r}")
    # every field of any row is a column (Dataset.from_list takes the first row's alone): a row without it, None
    columns = list(dict.fromkeys(key for record in records for key in record))
    records = [{key: record.get(key) for key in columns} for record in records]
    try:
        return Dataset.from_list(records), lines
    except (ValueError, TypeError, ArrowException) as err:  # e.g. a column holding numbers in some rows, text in others
        raise ValueError(f"{what}: cannot make a table of {str(path)!r}: {err}") from err


def uniform_types(records: list[dict], lines: list[int], source: str) -> list[dict]:
    """A column whose values mix plain types (label names and class ids, say) as text, which a table column can hold
    and `label_ids` still reads; missing fields stay missing. A list or an object among other kinds of value (a text
    field holding ["..."] in one row) is an error naming its line: as text it would be trained on as "['...']"."""
    kinds = {}
    for record in records:
        for key, value in record.items():
            if value is not None:
                kinds.setdefault(key, set()).add(type(value))
    mixed = {key for key, types in kinds.items() if len(types) > 1}
    if not mixed:
        return records
    for record, line in zip(records, lines):
        for key in mixed & record.keys():
            if isinstance(record[key], (list, dict)):
                others = sorted({t.__name__ for t in kinds[key]} - {type(record[key]).__name__})
                raise ValueError(
                    f"{source}, line {line}, field {key!r}: a {type(record[key]).__name__} where other rows hold "
                    f"{', '.join(others)}: give every row of a field one kind of value"
                )
    return [{k: str(v) if k in mixed and v is not None else v for k, v in r.items()} for r in records]


def check_columns(dataset: Dataset, columns: dict[str, str], source: str, what: str) -> None:
    """Every column exists (`columns`: each name and the option that chose it, which the error names), the split has
    rows."""
    for column, option in columns.items():
        if column not in dataset.column_names:
            raise ValueError(
                f"{what} {source!r} has no column {column!r} (columns: {', '.join(dataset.column_names)}): "
                f"name yours with {option}"
            )
    if len(dataset) == 0:
        raise ValueError(f"{what} {source!r} is empty")


# zero-width space, non-joiner, joiner, word joiner, BOM: invisible, and no whitespace to str.strip
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def visible(text: str) -> str:
    """What of `text` is neither whitespace nor an invisible character: a text of those alone is empty."""
    return text.translate(INVISIBLE).strip()


def check_texts(dataset: Dataset, column: str, source: str, what: str, where: Sequence[str]) -> None:
    """Every value of the column is a non-empty text. `where`: each row's place in the source (`places`; the rows
    may be a sample of it), so that an error names the source's line or row."""
    empty = [where[i] for i, text in enumerate(dataset[column]) if not isinstance(text, str) or not visible(text)]
    if empty:
        raise ValueError(
            f"{what} {source!r}, column {column!r}: {len(empty)} empty or non-text value(s), first at "
            f"{', '.join(empty[:5])}"
        )


def label_ids(values: list, label2id: dict[str, int], source: str, column: str, where: Sequence[str]) -> list[int]:
    """Label names or class ids -> class ids of the model's config (`where` as in `check_texts`)."""
    id2label = {i: name for name, i in label2id.items()}
    ids = []
    for row, value in zip(where, values, strict=True):
        if isinstance(value, str) and value in label2id:
            ids.append(label2id[value])
        elif isinstance(value, str) and value.strip().isdigit() and int(value) in id2label:  # an id read from CSV
            ids.append(int(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value in id2label:
            ids.append(value)
        else:
            known = ", ".join(f"{name} ({i})" for name, i in label2id.items())
            raise ValueError(f"{source!r}, column {column!r}, {row}: unknown label {value!r} (known: {known})")
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


def join_pairs(dataset: Dataset, k: int, columns: list[str], seed: int = 0) -> Dataset:
    """Every `k` pairs of a fixed shuffle joined into one (texts joined by a space): `len(dataset) // k` longer
    examples, each sentence of which is still translated one to one."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    groups = [order[i : i + k] for i in range(0, len(order) - k + 1, k)]
    texts = {column: dataset[column] for column in columns}
    return Dataset.from_dict(
        {column: [" ".join(values[i] for i in group) for group in groups] for column, values in texts.items()}
    )
