"""The tasks the project trains, as one table (`TASKS`): what varies from one task to another is a field of its record,
and data loading, batching, the trainer, LoRA, evaluation, the model card and `train.py` look tasks up here.

A task's name prefixes its command-line options (`--sentiment_train`, `--translation_loss_weight`), its training
loss in the logs (`loss_translation`), its LoRA adapter and the adapter's folder. Adding a task (say Marathi→English)
is one more `Task` in `TASKS` plus its data; the model files (modeling/configuration/pipeline_multitask.py) travel
with the weights and know nothing of this table.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datasets import ClassLabel, Dataset
from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding
from transformers.modeling_outputs import BaseModelOutput

from .metrics import sentiment_scores, translation_scores
from .sources import Source, check_texts, label_ids


@dataclass(frozen=True)
class Column:
    """A data column the task reads, and the option that names it."""

    option: str  # e.g. "text_column": --text_column names the column
    default: str
    help: str


@dataclass(frozen=True)
class CardWording:
    """How the model card and the Hub's `model-index` speak of the task."""

    hub_task: str  # the Hub's task type
    title: str  # the task's name in the card
    languages: tuple[str, ...]
    tags: tuple[str, ...]
    metrics: dict[str, tuple[str, str]]  # metric key -> (Hub metric type, display name), in the card's order
    hub_metric_ids: tuple[str, ...]  # the card metadata's `metrics`: ids of Hub metrics (evaluate) that compute them


@dataclass(frozen=True)
class Task:
    """One task: its data, how its rows become model inputs, how it is batched, predicted and scored, its LoRA adapter
    and its card wording."""

    name: str
    data: str  # how the options' help names its data
    input: Column  # the text the model reads
    target: Column  # what the model learns and a prediction is scored against
    # the target column -> references; checked, errors naming each row's place (the last argument, `sources.places`)
    references: Callable[[Dataset, str, dict[str, int], Source, Sequence[str]], list]
    tokenize: Callable[..., dict]  # (tokenizer, inputs, references, settings) -> features with `labels`
    collator: Callable[..., Callable]  # (tokenizer, model, pad_to_multiple_of) -> the collator of its batches
    predict: Callable[..., list]  # (model, tokenizer, batch, outputs, generation settings) -> one prediction per row
    loss_units: Callable[[dict], int]  # what the batch's mean loss is over: rows, or target tokens
    score: Callable[[list, list], tuple[dict[str, float], dict[str, str]]]  # `metrics.py`: (scores, signatures)
    primary: str  # the metric that enters the combined score choosing the best checkpoint
    scale: float  # the factor putting its metrics on the combined score's 0-100 scale
    lora_targets: str  # regex of the modules its LoRA adapter adapts
    fully_trained: tuple[str, ...]  # modules its adapter trains in full
    card: CardWording
    generates: bool = False  # predictions are generated (beam search settings apply)
    joins_pairs: bool = False  # a training source may join k rows into one (--<task>_train_concat)
    grouped_metric: str | None = None  # the score evaluate_model.py gives per value of --group_column
    hub_config_example: str | None = None
    lower_is_better: tuple[str, ...] = ()  # metrics where less is better (drawn dashed in the training curves)

    @property
    def classifies(self) -> bool:
        return not self.generates


# ---- sentiment: one class per text ----------------------------------------------------------------------------------


def class_ids(rows: Dataset, column: str, label2id: dict[str, int], source: Source, where: Sequence[str]) -> list[int]:
    """Label names or class ids -> class ids of the model's config. A column of class ids that names its classes (a
    Hub dataset's `ClassLabel`) is read by those names: its ids need not be the config's."""
    values, feature = rows[column], rows.features[column]
    if isinstance(feature, ClassLabel):
        values = [feature.int2str(v) if isinstance(v, int) and 0 <= v < feature.num_classes else v for v in values]
    return label_ids(values, label2id, source.location, column, where)


def tokenize_texts(tokenizer, inputs: list[str], references: list[int], settings) -> dict:
    features = tokenizer(inputs, truncation=True, max_length=settings.max_source_length)
    features["labels"] = references
    return features


def padding_collator(tokenizer, model, pad_to_multiple_of: int | None = None) -> DataCollatorWithPadding:
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)


def predict_classes(model, tokenizer, batch: dict, outputs, generation: dict) -> list[int]:
    logits = outputs.sentiment_logits if hasattr(outputs, "sentiment_logits") else outputs.logits
    return logits.argmax(-1).tolist()


def rows_of(batch: dict) -> int:
    return len(batch["labels"])


# ---- translation: a generated text per text -------------------------------------------------------------------------


def target_texts(
    rows: Dataset, column: str, label2id: dict[str, int], source: Source, where: Sequence[str]
) -> list[str]:
    check_texts(rows, column, source.location, source.what, where)
    return list(rows[column])


def tokenize_pairs(tokenizer, inputs: list[str], references: list[str], settings) -> dict:
    features = tokenizer(inputs, truncation=True, max_length=settings.max_source_length)
    targets = tokenizer(text_target=references, truncation=True, max_length=settings.max_target_length)
    features["labels"] = targets["input_ids"]
    return features


def seq2seq_collator(tokenizer, model, pad_to_multiple_of: int | None = None) -> DataCollatorForSeq2Seq:
    return DataCollatorForSeq2Seq(
        tokenizer, model=model, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of
    )


def predict_texts(model, tokenizer, batch: dict, outputs, generation: dict) -> list[str]:
    """Beam search from the encoder states the loss pass computed (as the pipeline does), decoded as the pipeline
    decodes, so that training, the evaluation command and the pipeline score the same text."""
    encoder_outputs = BaseModelOutput(last_hidden_state=outputs.encoder_last_hidden_state)
    generated = model.generate(encoder_outputs=encoder_outputs, attention_mask=batch["attention_mask"], **generation)
    return [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]


def target_tokens(batch: dict) -> int:
    return int((batch["labels"] != -100).sum())


# ---- the table ------------------------------------------------------------------------------------------------------

SENTIMENT = Task(
    name="sentiment",
    data="sentiment",
    input=Column("text_column", "text", "column of the English text to classify"),
    target=Column("label_column", "label", "column of the label: a name or a class id"),
    references=class_ids,
    tokenize=tokenize_texts,
    collator=padding_collator,
    predict=predict_classes,
    loss_units=rows_of,
    score=sentiment_scores,
    primary="accuracy",
    scale=100.0,
    lora_targets=r"encoder\.encoder\.layer\.\d+\.attention\.self\.(query|key|value)",
    fully_trained=("classifier",),
    card=CardWording(
        hub_task="text-classification",
        title="Sentiment classification",
        languages=("en",),
        tags=("sentiment", "text-classification"),
        metrics={"accuracy": ("accuracy", "Accuracy"), "f1": ("f1", "Macro F1")},
        hub_metric_ids=("accuracy", "f1"),
    ),
    grouped_metric="accuracy",
    hub_config_example="sst2",
)

TRANSLATION = Task(
    name="translation",
    data="English–Marathi",
    input=Column("source_column", "en", "column of the English source; nested Hub columns as 'translation.en'"),
    target=Column("target_column", "mr", "column of the Marathi target"),
    references=target_texts,
    tokenize=tokenize_pairs,
    collator=seq2seq_collator,
    predict=predict_texts,
    loss_units=target_tokens,
    score=translation_scores,
    primary="chrfpp",
    scale=1.0,
    # the encoder's and the decoder's self-attention; the cross-attention (which starts from scratch, so a low-rank
    # update of random weights would not do) and the LM-head transform are trained in full
    lora_targets=r"(encoder|decoder)\.encoder\.layer\.\d+\.attention\.self\.(query|key|value)",
    fully_trained=("crossattention", "lm_head.predictions.transform"),
    card=CardWording(
        hub_task="translation",
        title="English→Marathi translation",
        languages=("en", "mr"),
        tags=("translation",),
        metrics={
            "bleu": ("bleu", "BLEU"),
            "chrf": ("chrf", "chrF"),
            "chrfpp": ("chrf++", "chrF++"),
            "loops": ("loops", "Looping outputs (%)"),  # lower is better; references loop 0-2% (long sentences)
        },
        hub_metric_ids=("bleu", "chrf"),  # chrF++ is evaluate's chrf with word_order=2; loops is this project's
    ),
    generates=True,
    joins_pairs=True,
    lower_is_better=("loops",),
)

TASKS: dict[str, Task] = {task.name: task for task in (SENTIMENT, TRANSLATION)}


def untrained_tasks(config, tasks: Sequence[str]) -> list[str]:
    """Those of `tasks` whose heads the model never trained (`config.trained_tasks`: None, or absent in a folder saved
    before it existed, means every task was trained)."""
    trained = getattr(config, "trained_tasks", None)
    return [] if trained is None else [task for task in tasks if task not in trained]


UNTRAINED_WHY = "its config's trained_tasks: a run without that task's data, or a LoRA run's export of the other task"


def metric_scale(metric: str) -> float | None:
    """The factor that puts a metric of any task on one 0-100 scale; None for a name no task scores."""
    return next((t.scale for t in TASKS.values() if metric in t.card.metrics), None)


def is_lower_better(metric: str) -> bool:
    """Whether less is better for a metric of any task (`loops`); higher is, for the rest."""
    return any(metric in t.lower_is_better for t in TASKS.values())
