"""Scoring evaluation sets: the one way training's evaluations and the evaluation command predict and score a set.

- `predict_rows` runs the model over some rows of an `data.EvalSet` (all of them, or one process's share) and returns
  each row's prediction with the summed loss;
- `score_set` scores the predictions of every row with the task's metric function (`metrics.py`) into a `SetResult`;
- `metric_keys` and `combined_score` name the results as the logs, `all_results.json` and the card read them.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from .data import EvalSet
from .sources import shown
from .tasks import TASKS


@dataclass
class Predictions:
    """Predictions of some rows of a set, with the loss summed over them (in the task's units: rows or tokens)."""

    values: dict[int, object] = field(default_factory=dict)  # row -> prediction
    loss_sum: float = 0.0
    loss_units: int = 0

    @classmethod
    def merged(cls, parts: Iterable["Predictions"]) -> "Predictions":
        """The predictions of several processes' shares as one."""
        out = cls()
        for part in parts:
            out.values.update(part.values)
            out.loss_sum += part.loss_sum
            out.loss_units += part.loss_units
        return out

    def ordered(self) -> list:
        return [self.values[row] for row in sorted(self.values)]


@dataclass(frozen=True)
class SetResult:
    """One evaluation set's scores: the task's metrics (and the loss, where it was computed) and the signatures that
    say how they were computed."""

    name: str
    task: str
    split: str  # its role in the run: "validation" or "test"
    source: str  # the source as logs show it
    rows: int
    scores: dict[str, float]
    signatures: dict[str, str]
    loss: float | None = None
    data_split: str | None = None  # the split the data calls itself (the card's model-index); None: `split`

    def metrics(self, prefix: str) -> dict[str, float]:
        """`<prefix>_<set>_<metric>`, the names of the logs and `all_results.json` (the loss first)."""
        values = ({"loss": self.loss} if self.loss is not None else {}) | self.scores
        return {metric_key(prefix, self.name, metric): value for metric, value in values.items()}


@torch.no_grad()
def predict_rows(
    model,
    tokenizer,
    eval_set: EvalSet,
    collate: Callable[[list[dict]], dict],
    *,
    batch_size: int,
    device,
    generation: dict,
    rows: list[int] | None = None,
    progress: Callable[[int], object] | None = None,
) -> Predictions:
    """Predict `rows` of a set (all by default), in batches of similar lengths, longest first (a memory problem shows
    at once), each batch padded by the task's collator. `generation`: beam search settings of a generating task.
    `progress` is told how many rows each batch held."""
    task = TASKS[eval_set.task]
    dataset = eval_set.dataset
    rows = list(range(len(dataset))) if rows is None else rows
    lengths = dataset["input_ids"]
    order = sorted(rows, key=lambda i: len(lengths[i]), reverse=True)
    out = Predictions()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {k: v.to(device) for k, v in collate([dataset[i] for i in chunk]).items()}
        outputs = model(**batch)
        units = task.loss_units(batch)
        out.loss_sum += outputs.loss.item() * units
        out.loss_units += units
        out.values.update(zip(chunk, task.predict(model, tokenizer, batch, outputs, generation)))
        if progress is not None:
            progress(len(chunk))
    return out


def score_set(eval_set: EvalSet, predictions: Predictions, with_loss: bool = True) -> SetResult:
    """The set's scores, from the predictions of all its rows."""
    if len(predictions.values) != len(eval_set.references):
        raise ValueError(f"{eval_set.name}: {len(predictions.values)} predictions for {len(eval_set.references)} rows")
    scores, signatures = TASKS[eval_set.task].score(predictions.ordered(), eval_set.references)
    loss = round(predictions.loss_sum / max(predictions.loss_units, 1), 4) if with_loss else None
    return SetResult(
        name=eval_set.name,
        task=eval_set.task,
        split=eval_set.split,
        source=shown(eval_set.source.location),
        rows=len(eval_set.references),
        scores=scores,
        signatures=signatures,
        loss=loss,
        data_split=eval_set.data_split,
    )


def metric_key(prefix: str, *parts: str) -> str:
    """A metric's name in the logs and `all_results.json`: `eval_<set>_<metric>`, `eval_combined`."""
    return "_".join((prefix, *parts))


def metric_keys(results: Iterable[SetResult], prefix: str) -> dict[str, float]:
    """Every result's metrics as `<prefix>_<set>_<metric>`."""
    return {key: value for result in results for key, value in result.metrics(prefix).items()}


def combined_score(results: Iterable[SetResult]) -> float:
    """Mean over tasks of each task's primary score (mean over its sets), on one 0-100 scale: what chooses the best
    checkpoint."""
    per_task: dict[str, list[float]] = {}
    for result in results:
        task = TASKS[result.task]
        per_task.setdefault(task.name, []).append(task.scale * result.scores[task.primary])
    means = [sum(values) / len(values) for values in per_task.values()]
    return round(sum(means) / len(means), 4)


def signatures(results: Iterable[SetResult]) -> dict[str, str]:
    """The signatures of the results' scores (the same for every set of a task), each metric once."""
    found: dict[str, str] = {}
    for result in results:
        found.update(result.signatures)
    return found
