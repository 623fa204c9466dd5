"""Which examples make a batch: every batch belongs to one task.

- `MultitaskDataset` puts the tasks' tokenized datasets one after the other.
- `MultitaskBatchSampler` decides which task each batch comes from (proportional, temperature-scaled or round-robin)
  and groups each task's examples by length (`shuffled_batches`); it is deterministic for a seed and an epoch, so a
  resumed run sees the same batches in the same order.

Only torch is needed here: the benchmark under bench/ batches its examples with the same function.
"""

import math
from typing import Literal

import torch
from torch.utils.data import Dataset, Sampler

Sampling = Literal["proportional", "temperature", "round_robin"]


SEED_STRIDE = 1_000_003  # seeds a stream per (seed, epoch) and per (seed, source): seed * SEED_STRIDE + number


class MultitaskDataset(Dataset):
    """The tasks' tokenized datasets one after the other, in the order of `datasets`; each row says which task it
    belongs to.

    `source_weights` gives, per task, the (rows, weight) of each of its sources in row order: the weight is how many
    passes over that source one pass over the task makes (2 repeats it, 0.25 takes a fresh quarter of it). A task
    without an entry is one source of weight 1.
    """

    def __init__(self, datasets: dict[str, Dataset], source_weights: dict[str, list[tuple[int, float]]] | None = None):
        self.tasks = list(datasets)
        self.datasets = datasets
        self.source_weights = {task: [(len(datasets[task]), 1.0)] for task in self.tasks}
        for task, parts in (source_weights or {}).items():
            if sum(rows for rows, _ in parts) != len(datasets[task]):
                raise ValueError(f"the {task} sources' rows ({parts}) do not add up to its {len(datasets[task])} rows")
            self.source_weights[task] = list(parts)
        for task in self.tasks:
            if len(datasets[task]) and not self.pass_size(task):  # it would train nothing, or fail at its first batch
                raise ValueError(
                    f"one pass over the {task} data holds no example: its sources' rows times their weights "
                    f"{self.source_weights[task]} round down to 0; raise a weight, or leave the task's data out"
                )
        self.offsets, total = {}, 0
        for task in self.tasks:
            self.offsets[task] = total
            total += len(datasets[task])
        self.total = total

    def __len__(self):
        return self.total

    def __getitem__(self, index):
        for task in reversed(self.tasks):
            if index >= self.offsets[task]:
                return {**self.datasets[task][index - self.offsets[task]], "task": task}
        raise IndexError(index)

    def lengths(self, task: str) -> list[int]:
        return [len(ids) for ids in self.datasets[task]["input_ids"]]

    def pass_size(self, task: str) -> int:
        """How many examples one pass over a task holds, its sources weighted."""
        return sum(int(rows * weight) for rows, weight in self.source_weights[task])

    def pass_indices(self, task: str, pass_number: int, seed: int = 0) -> list[int]:
        """The task's row indices one pass visits: each source `int(weight)` times in full, plus the next `weight % 1`
        share of it in a fixed shuffled order of its rows (`seed`), pass after pass: a source of weight 0.25 shows
        a fresh quarter of its rows each pass, and all of them over 4 passes. A source of weight 1 is visited exactly
        once."""
        indices, start = [], 0
        for number, (rows, weight) in enumerate(self.source_weights[task]):
            whole, extra = int(weight), int(rows * weight) - rows * int(weight)
            indices += list(range(start, start + rows)) * whole
            if extra:
                order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed * SEED_STRIDE + number))
                first = pass_number * extra % rows
                picked = torch.cat([order, order])[first : first + extra]  # wraps around the end of the order
                indices += (picked + start).tolist()
            start += rows
        return indices


def shuffled_batches(
    lengths: list[int], batch_size: int, generator: torch.Generator, group_by_length: bool = True
) -> list[list[int]]:
    """One pass over examples of these lengths, as batches of indices in random order. With `group_by_length`, the
    shuffled examples are cut into chunks of 50 batches and sorted by length inside a chunk before batching, so that a
    batch pads little while the order stays random at the scale of chunks."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        chunk = 50 * batch_size
        order = [
            i
            for start in range(0, len(order), chunk)
            for i in sorted(order[start : start + chunk], key=lambda i: lengths[i], reverse=True)
        ]
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def task_shares(
    dataset: MultitaskDataset, batch_size: int, sampling: Sampling = "proportional", temperature: float = 2.0
) -> dict[str, float]:
    """The share of each task's batches among all batches: `proportional` to its batches per pass, p ∝ n^(1/T)
    (n: its examples per pass) for `temperature`, equal for `round_robin`."""
    tasks = dataset.tasks
    if sampling == "round_robin":
        weights = [1.0 for _ in tasks]
    elif sampling == "temperature":
        weights = [dataset.pass_size(t) ** (1.0 / temperature) for t in tasks]
    else:
        weights = [math.ceil(dataset.pass_size(t) / batch_size) for t in tasks]
    return {t: w / sum(weights) for t, w in zip(tasks, weights)}


class MultitaskBatchSampler(Sampler[list[int]]):
    """Yields batches of indices into a `MultitaskDataset`, each batch from one task.

    An epoch holds as many batches as all tasks have together. `proportional` gives every batch of every task exactly
    once per epoch, in a random interleaving; `temperature` draws each batch's task with p ∝ n^(1/T) (T=1 is
    proportional in expectation, larger T favours the smaller task, whose batches then repeat); `round_robin`
    alternates the tasks. With `group_by_length`, each task's batches come from `shuffled_batches`: batches of
    similar lengths, so that a batch pads little.
    """

    def __init__(
        self,
        dataset: MultitaskDataset,
        batch_size: int,
        sampling: Sampling = "proportional",
        temperature: float = 2.0,
        group_by_length: bool = True,
        seed: int = 0,
    ):
        self.dataset, self.batch_size, self.sampling = dataset, batch_size, sampling
        self.temperature, self.group_by_length, self.seed = temperature, group_by_length, seed
        self.lengths = {task: dataset.lengths(task) for task in dataset.tasks}
        self.num_batches = {task: math.ceil(dataset.pass_size(task) / batch_size) for task in dataset.tasks}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(self.num_batches.values())

    def task_probabilities(self) -> dict[str, float]:
        return task_shares(self.dataset, self.batch_size, self.sampling, self.temperature)

    def schedule(self, generator: torch.Generator) -> list[str]:
        """The task of every batch of the epoch."""
        tasks = self.dataset.tasks
        if self.sampling == "round_robin":
            return [tasks[i % len(tasks)] for i in range(len(self))]
        if self.sampling == "temperature":
            p = torch.tensor([self.task_probabilities()[t] for t in tasks])
            return [tasks[i] for i in torch.multinomial(p, len(self), replacement=True, generator=generator).tolist()]
        order = [t for t in tasks for _ in range(self.num_batches[t])]
        return [order[i] for i in torch.randperm(len(order), generator=generator).tolist()]

    def task_batches(self, task: str, generator: torch.Generator, pass_number: int) -> list[list[int]]:
        """One pass over a task's examples (its sources weighted), as shuffled batches of global indices."""
        offset = self.dataset.offsets[task]
        indices = self.dataset.pass_indices(task, pass_number, self.seed)
        lengths = [self.lengths[task][i] for i in indices]
        batches = shuffled_batches(lengths, self.batch_size, generator, self.group_by_length)
        return [[offset + indices[i] for i in batch] for batch in batches]

    def __iter__(self):
        # one stream per (seed, epoch): seed + epoch would give seed s at epoch 1 the batches of seed s + 1 at epoch 0
        generator = torch.Generator().manual_seed(self.seed * SEED_STRIDE + self.epoch)
        pending = {task: [] for task in self.dataset.tasks}
        passes = dict.fromkeys(self.dataset.tasks, 0)
        for task in self.schedule(generator):
            if not pending[task]:  # a task sampled more often than it has batches starts a new pass
                # the epoch's first pass takes the epoch's share of a fractional source; a further one, the next
                pending[task] = self.task_batches(task, generator, self.epoch + passes[task])
                passes[task] += 1
            yield pending[task].pop()
