"""Task data: each task's training, validation and test sources, checked, tokenized and named.

A source is a local file (`.csv`, `.tsv`, `.json`, `.jsonl`) or a Hub dataset id (with `*_dataset_config` and a split
name). A task may have several training sources, each with a mixing weight (how many passes over it one epoch makes:
2 repeats it, 0.25 draws a fresh quarter of it every epoch), and several validation and test sets, each scored on its
own. Every check runs before training starts, and every error names the file, the column and the line (a Hub
split: the row number).

Each task of `tasks.TASKS` has the same options, prefixed by its name (`--sentiment_train`, `--translation_test`, ...),
and the options naming its columns (`--text_column`, ...).
"""

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, concatenate_datasets
from transformers import PreTrainedTokenizerBase

from . import ROOT
from .sources import (
    Source,
    check_columns,
    check_texts,
    is_file,
    join_pairs,
    load_split,
    own_split,
    places,
    set_name,
    shown,
    unique_names,
    warn_if_degenerate,
)
from .tasks import TASKS, Task

logger = logging.getLogger(__name__)

DEMO_DATA = ROOT / "demo_data"
NONE = ("", "none", "None")
ROLES = ("train", "validation", "test")
MAX_SAMPLES = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_test_samples"}
SAMPLES_FROM = ("first", "spread")  # which rows the max_*_samples options keep (`kept_rows`)


def demo_file(task: str, role: str) -> Path:
    """The demo set's file of one task and role (which may not exist: the demo set has no test files)."""
    return DEMO_DATA / f"{task}_{role}.jsonl"


def _demo_sources(task: Task, role: str):
    """A list-of-sources default: the demo set's file of that task and role, where the demo set has one."""
    demo = demo_file(task.name, role)
    return dict(default_factory=lambda: [str(demo)]) if demo.is_file() else dict(default=None)


def task_options(task: Task, roles=ROLES, demo: bool = True) -> list[tuple[str, type, dataclasses.Field]]:
    """The options of one task's data (sources, weights, Hub config and splits, columns), as dataclass fields."""
    name, data = task.name, task.data
    options = []
    if "train" in roles:
        options += [
            (
                f"{name}_train",
                list[str] | None,
                field(
                    **_demo_sources(task, "train") if demo else dict(default=None),
                    metadata={"help": f"{data} training sources: .csv/.tsv/.json/.jsonl files or Hub dataset ids"},
                ),
            ),
            (
                f"{name}_train_weights",
                list[float] | None,
                field(
                    default=None,
                    metadata={"help": f"one mixing weight per {name} training source (passes per epoch); 1 each"},
                ),
            ),
        ]
    if "train" in roles and task.joins_pairs:
        help = (
            f"per {name} training source, how many of its pairs are joined into one example (1: as they are). Joined "
            "short pairs teach long sentences: a model trained on short pairs alone loops or stops early on long "
            "input. List a source twice to have it both plain and joined"
        )
        options.append((f"{name}_train_concat", list[int] | None, field(default=None, metadata={"help": help})))
    if "validation" in roles:
        help = f"{data} validation sets (files or Hub ids); 'none' to skip"
        default = _demo_sources(task, "validation") if demo else dict(default=None)
        options.append((f"{name}_validation", list[str] | None, field(**default, metadata={"help": help})))
    if "test" in roles:
        help = f"{data} test sets: .csv/.tsv/.json/.jsonl files or Hub ids, scored once after training"
        options.append((f"{name}_test", list[str] | None, field(default=None, metadata={"help": help})))
    example = f", e.g. {task.hub_config_example!r}" if task.hub_config_example else ""
    options.append(
        (f"{name}_dataset_config", str | None, field(default=None, metadata={"help": f"Hub config{example}"}))
    )
    for role in roles:
        help = f"split of Hub {name} {role} sets"
        options.append((f"{name}_{role}_split", str, field(default=role, metadata={"help": help})))
    return options


def column_options() -> list[tuple[str, type, dataclasses.Field]]:
    """The options naming the tasks' columns, each once."""
    columns = {c.option: c for task in TASKS.values() for c in (task.input, task.target)}
    return [(c.option, str, field(default=c.default, metadata={"help": c.help})) for c in columns.values()]


class _DataChecks:
    """What `DataArguments` checks and answers, whatever the tasks."""

    def __post_init__(self):
        for name in ("max_source_length", "max_target_length", *MAX_SAMPLES.values()):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.samples_from not in SAMPLES_FROM:
            raise ValueError(f"samples_from must be one of {', '.join(SAMPLES_FROM)}; got {self.samples_from!r}")
        if self.samples_from != "first" and all(getattr(self, name) is None for name in MAX_SAMPLES.values()):
            raise ValueError(
                f"--samples_from {self.samples_from} chooses the rows a cap on the rows keeps, and there is none: "
                "give the cap (--max_eval_samples, --max_test_samples or --max_train_samples; evaluate_model.py: "
                "--max_samples), or leave --samples_from out"
            )
        for task in TASKS.values():
            for role in ROLES:
                setattr(self, f"{task.name}_{role}", _source_list(getattr(self, f"{task.name}_{role}")))
            self._check_weights(task.name)
            if task.joins_pairs:
                self._check_concat(task.name)
            self._check_hub_parts(task.name)

    def _per_source(self, option: str, sources_option: str, kind: type, unit: str) -> list | None:
        """A per-source list option, one number (from a JSON/YAML file) read as a list of one, checked to give one
        value per source."""
        values, sources = getattr(self, option), getattr(self, sources_option) or []
        if values is None:
            return None
        if isinstance(values, (int, float)):
            values = [kind(values)]
            setattr(self, option, values)
        if len(values) != len(sources):
            raise ValueError(f"{option} gives {len(values)} {unit}(s) for {len(sources)} {sources_option} source(s)")
        return values

    def _check_weights(self, task: str) -> None:
        weights = self._per_source(f"{task}_train_weights", f"{task}_train", float, "weight")
        if weights is not None and (any(w < 0 for w in weights) or (weights and not any(weights))):
            raise ValueError(f"{task}_train_weights must be non-negative and not all 0, got {weights}")

    def _check_hub_parts(self, task: str) -> None:
        """A Hub config or split names a part of a Hub dataset: for local files it would be ignored."""
        sources = {role: getattr(self, f"{task}_{role}", None) or [] for role in ROLES}
        local = {role: bool(found) and all(map(is_file, found)) for role, found in sources.items()}
        ignored = [
            f"{task}_{role}_split" for role in ROLES if local[role] and getattr(self, f"{task}_{role}_split") != role
        ]
        given = [role for role in ROLES if sources[role]]
        if getattr(self, f"{task}_dataset_config") and given and all(local[role] for role in given):
            ignored.insert(0, f"{task}_dataset_config")
        if ignored:
            flags = ", ".join(f"--{option}" for option in ignored)
            raise ValueError(
                f"{flags} name(s) a part of a Hub dataset, and the {task} sources it applies to are local files: "
                f"drop {flags}"
            )

    def _check_concat(self, task: str) -> None:
        concat = self._per_source(f"{task}_train_concat", f"{task}_train", int, "value")
        if concat is not None and any(k < 1 for k in concat):
            raise ValueError(f"{task}_train_concat values must be at least 1, got {concat}")

    def sources(self, task: str, role: str) -> list[Source]:
        """The sources of one task and role, named and weighted."""
        locations = _source_list(getattr(self, f"{task}_{role}")) or []  # also after an attribute was set to one str
        weights = (getattr(self, f"{task}_train_weights") if role == "train" else None) or [1.0] * len(locations)
        concat = (getattr(self, f"{task}_train_concat", None) if role == "train" else None) or [1] * len(locations)
        names = [set_name(location) + (f"_x{k}" if k > 1 else "") for location, k in zip(locations, concat)]
        return [
            Source(task, role, location, name, weight, k)
            for location, name, weight, k in zip(locations, unique_names(names), weights, concat)
        ]

    def column(self, column) -> str:
        """The name the data gives a task's column (`tasks.Column`)."""
        return getattr(self, column.option)


COMMON_OPTIONS = [
    ("max_source_length", int, field(default=128, metadata={"help": "truncate inputs to this many tokens"})),
    (
        "max_target_length",
        int,
        field(default=128, metadata={"help": "truncate generated tasks' targets to this many tokens"}),
    ),
    (
        "max_train_samples",
        int | None,
        field(default=None, metadata={"help": "keep N rows of each training source (see --samples_from)"}),
    ),
    (
        "max_eval_samples",
        int | None,
        field(
            default=None,
            metadata={"help": "keep N rows of each validation set (scored at every evaluation; see --samples_from)"},
        ),
    ),
    (
        "max_test_samples",
        int | None,
        field(
            default=None,
            metadata={"help": "keep N rows of each test set (scored once, after training; see --samples_from)"},
        ),
    ),
    (
        "samples_from",
        str,
        field(
            default="first",
            metadata={
                "help": "which rows the max_*_samples options keep: 'first' (the first N, as the HF example "
                "scripts) or 'spread' (N at equal steps through the set: every part of a file in an order, such as "
                "short to long)"
            },
        ),
    ),
    (
        "preprocessing_num_workers",
        int | None,
        field(default=None, metadata={"help": "processes for tokenization"}),
    ),
]

DataArguments = dataclasses.make_dataclass(
    "DataArguments",
    [option for task in TASKS.values() for option in task_options(task)] + column_options() + COMMON_OPTIONS,
    bases=(_DataChecks,),
    namespace={
        "__doc__": "Where each task's data comes from. Defaults: the small demo set in `demo_data/` (CC0).",
        "__module__": __name__,
    },
)


def _source_list(value) -> list[str] | None:
    """`None`, 'none', one source or a list of sources -> a list of sources, or None."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    values = [v.strip() for v in values if v.strip() not in NONE]
    return values or None


@dataclass
class EvalSet:
    """A validation or test set, as one function made it: the rows as read (those `max_*_samples` kept), the
    model's inputs of those rows, and in the same order what a prediction is scored against (the task's references:
    class ids, reference translations)."""

    name: str
    task: str
    split: str  # its role in this run: "validation" or "test"
    dataset: Dataset  # tokenized, one row per row of `rows`
    references: list
    rows: Dataset  # the rows as read: every column, for reports (input texts, a group column)
    input_column: str  # the column of `rows` the model read
    source: Source
    data_split: str  # the split the data calls itself (`sources.own_split`): what the card's model-index names
    row_numbers: Sequence[int]  # each row's number in the source (0-based): the sample `max_*_samples` kept
    source_rows: int  # the rows of the source, of which `rows` are all or a sample

    @property
    def inputs(self) -> list[str]:
        """The texts the model read, one per row."""
        return list(self.rows[self.input_column])

    @property
    def whole(self) -> bool:
        """Whether every row of the source was scored (no `max_*_samples` cap left any out)."""
        return len(self.row_numbers) == self.source_rows

    @property
    def sample(self) -> str:
        """Which rows were scored, in words (`sample_words`)."""
        return sample_words(self.row_numbers, self.source_rows)


def sample_words(row_numbers: Sequence[int], source_rows: int) -> str:
    """Which rows of a source were kept, in words: "1,422 rows", "the first 300 of 1,422 rows" or "300 of 1,422 rows,
    in equal steps through it"."""
    kept = len(row_numbers)
    if kept == source_rows:
        return f"{source_rows:,} row" + "s" * (source_rows != 1)
    if list(row_numbers) == list(range(kept)):
        return f"the first {kept:,} of {source_rows:,} rows"
    return f"{kept:,} of {source_rows:,} rows, in equal steps through it"


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


@dataclass
class SourceRows:
    """One source, read and checked, not yet tokenized: the pairs the model reads (its input texts and its targets,
    class ids or texts, after `max_*_samples` and any joining), its references in the same order, and the rows as read
    with their numbers in the source. Tokenizing is a separate step, so that a new vocabulary (`--trim_vocab`) tokenizes
    the same rows again without reading and checking them twice."""

    source: Source
    pairs: Dataset
    references: list
    rows: Dataset
    row_numbers: Sequence[int]
    source_rows: int  # before `max_*_samples`


@dataclass
class TaskRows:
    """Every source of every task, read and checked (`read_task_data`), for `tokenize_task_data`."""

    train: dict[str, list[SourceRows]]
    evaluation: list[SourceRows]  # the validation sets, then the test sets


def read_source(
    raw: Dataset, source: Source, args, label2id: dict[str, int], lines: Sequence[int] | None = None
) -> SourceRows:
    """Check one source's rows, keep `max_*_samples` of them (`kept_rows`), and take its task's references (the same
    rows, in the same order). `lines`: each row's line in a local file, which errors name (else its row number)."""
    task, what = TASKS[source.task], source.what
    inputs, targets = args.column(task.input), args.column(task.target)
    check_columns(raw, {inputs: f"--{task.input.option}", targets: f"--{task.target.option}"}, source.location, what)
    max_samples = getattr(args, MAX_SAMPLES[source.role])
    row_numbers = kept_rows(len(raw), max_samples, args.samples_from)
    rows = raw.select(row_numbers) if len(row_numbers) < len(raw) else raw
    where = places(row_numbers, lines)
    check_texts(rows, inputs, source.location, what, where)
    references = task.references(rows, targets, label2id, source, where)
    warn_if_degenerate(rows[inputs], rows[targets] if task.classifies else None, source)
    pairs = rows.select_columns([inputs, targets])
    if source.concat > len(pairs):
        raise ValueError(
            f"{what} {source.location!r}: --{source.task}_train_concat {source.concat} joins that many pairs into "
            f"each example, and it has {len(pairs)} row(s) (after --max_train_samples): give a smaller value"
        )
    if source.concat > 1:
        pairs = join_pairs(pairs, source.concat, [inputs, targets])
        references = list(pairs[targets])
    elif task.classifies:  # the column as the model's class ids
        pairs = pairs.remove_columns(targets).add_column(targets, references)
    return SourceRows(source, pairs, references, rows, row_numbers, len(raw))


def tokenize_source(read: SourceRows, args, tokenizer) -> Dataset:
    """One source's pairs as the model's inputs and labels."""
    task = TASKS[read.source.task]
    inputs, targets = args.column(task.input), args.column(task.target)

    def tokenize(batch):
        return task.tokenize(tokenizer, batch[inputs], batch[targets], args)

    return read.pairs.map(
        tokenize,
        batched=True,
        num_proc=args.preprocessing_num_workers,
        remove_columns=read.pairs.column_names,
        desc=f"Tokenizing {read.source.what} {read.source.name}",
    )


def warn_of_cut_pairs(source: Source, dataset: Dataset, args) -> None:
    """A pair whose input or target was cut at --max_source_length / --max_target_length no longer translates one to
    one: the model learns to drop, or to invent, what the other side still has. Joined pairs (--*_train_concat) run
    long. Truncation is what the HF example scripts do too; the log says how often it happened."""
    cut = sum(
        len(ids) >= args.max_source_length or len(labels) >= args.max_target_length
        for ids, labels in zip(dataset["input_ids"], dataset["labels"], strict=True)
    )
    if cut:
        logger.warning(
            "%s train data %s: %d of %d examples cut at --max_source_length %d or --max_target_length %d; their cut "
            "ends no longer translate each other (raise the lengths, or join fewer pairs)",
            source.task,
            source.name,
            cut,
            len(dataset),
            args.max_source_length,
            args.max_target_length,
        )


def kept_rows(num_rows: int, max_samples: int | None, samples_from: str) -> range | list[int]:
    """The indices of the rows `max_samples` keeps of `num_rows`, in file order: all of them (no cap), the first N
    (as the HF example scripts), or N at equal steps through the set. The first N of a file sorted short to long
    (Tatoeba valid) are its shortest sentences, which rank checkpoints differently from the whole set; a spread sample
    holds every length."""
    if max_samples is None or max_samples >= num_rows:
        return range(num_rows)
    if samples_from == "first":
        return range(max_samples)
    # rows 0, k, 2k, ... for a real step k = num_rows / max_samples > 1: N distinct rows, the first always among them
    return [i * num_rows // max_samples for i in range(max_samples)]


def load_source(source: Source, args, label2id: dict[str, int]) -> SourceRows:
    """One source, loaded and checked, with its references."""
    config = getattr(args, f"{source.task}_dataset_config")
    split = getattr(args, f"{source.task}_{source.role}_split")
    raw, lines = load_split(source.location, config, split, source.what)
    return read_source(raw, source, args, label2id, lines)


def read_task_data(args, label2id: dict[str, int]) -> TaskRows:
    """Every source of every task, read and checked (every error before any work), each logged once.

    Run it under `TrainingArguments.main_process_first()`: the first process fills the datasets cache, the others
    read it.
    """
    warn_of_demo_validation(args)
    evaluation = [source for task in TASKS for role in ("validation", "test") for source in args.sources(task, role)]
    check_unique_eval_names(evaluation)
    read = TaskRows(train={}, evaluation=[])
    for task in TASKS:
        parts = [load_source(source, args, label2id) for source in args.sources(task, "train")]
        if parts:
            read.train[task] = parts
            log_training_mix(task, [(part.source, len(part.pairs)) for part in parts])
    for source in evaluation:
        part = load_source(source, args, label2id)
        sample = sample_words(part.row_numbers, part.source_rows)
        logger.info("%s %s: %s from %s", source.what, source.name, sample, shown(source.location))
        read.evaluation.append(part)
    return read


def tokenize_task_data(read: TaskRows, args, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    """The sources `read_task_data` read, tokenized: training rows per task (its sources one after the other),
    validation and test sets. Run it under `TrainingArguments.main_process_first()`, as `read_task_data`."""
    data = TaskData(train={}, train_sources={}, validation=[], test=[])
    for task, parts in read.train.items():
        datasets = [tokenize_source(part, args, tokenizer) for part in parts]
        if TASKS[task].generates:
            for part, dataset in zip(parts, datasets):
                warn_of_cut_pairs(part.source, dataset, args)
        data.train[task] = concatenate_datasets(datasets) if len(datasets) > 1 else datasets[0]
        data.train_sources[task] = [(part.source, len(d)) for part, d in zip(parts, datasets)]
    for part in read.evaluation:
        eval_set = to_eval_set(part, tokenize_source(part, args, tokenizer), args)
        (data.validation if part.source.role == "validation" else data.test).append(eval_set)
    return data


def load_task_data(args, tokenizer: PreTrainedTokenizerBase, label2id: dict[str, int]) -> TaskData:
    """Every source of every task, read, checked and tokenized: training rows per task, validation and test sets.

    Run it under `TrainingArguments.main_process_first()`: the first process tokenizes and fills the datasets cache,
    the others read it.
    """
    return tokenize_task_data(read_task_data(args, label2id), args, tokenizer)


def warn_of_demo_validation(args) -> None:
    """A task trained on the user's own data but validated on the demo set, the default left in place, would choose
    checkpoints and fill the card with scores that say nothing of that data: say so before anything loads."""
    for task in TASKS:
        demo = {role: str(demo_file(task, role)) for role in ("train", "validation")}
        train = _source_list(getattr(args, f"{task}_train")) or []
        if (
            train
            and train != [demo["train"]]
            and _source_list(getattr(args, f"{task}_validation")) == [demo["validation"]]
        ):
            logger.warning(
                "%s trains on %s but validates on the demo set (%s), the default: its scores say nothing of that "
                "data; give --%s_validation (or 'none')",
                task,
                ", ".join(shown(location) for location in train),
                shown(demo["validation"]),
                task,
            )


def to_eval_set(read: SourceRows, dataset: Dataset, args) -> EvalSet:
    """A validation or test source, read and tokenized, as an evaluation set."""
    source = read.source
    hub_split = getattr(args, f"{source.task}_{source.role}_split")
    return EvalSet(
        source.name,
        source.task,
        source.role,
        dataset,
        read.references,
        read.rows,
        args.column(TASKS[source.task].input),
        source,
        data_split=own_split(source.location, hub_split),
        row_numbers=read.row_numbers,
        source_rows=read.source_rows,
    )


def check_unique_eval_names(sources: list[Source]) -> None:
    """Metrics are keyed by set name: a sentiment and a translation set of one name would overwrite each other."""
    seen = {}
    for s in sources:
        key = (s.role, s.name)
        if key in seen:
            raise ValueError(
                f"two {s.role} sets are both called {s.name!r} ({shown(seen[key].location)}, "
                f"{shown(s.location)}): give one of them a file or folder of another name"
            )
        seen[key] = s


def log_training_mix(task: str, parts: list[tuple[Source, int]]) -> None:
    """Each training source with its rows, weight and share of the task's rows per epoch."""
    per_epoch = [int(rows * source.weight) for source, rows in parts]  # as the sampler counts them
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
            n,
            100 * n / total,
            task,
        )
