"""Training curves as a picture: each task's training loss and every validation score over the steps, drawn from the
Trainer's log history (`trainer_state.json`), so that a reader sees at a glance whether a run was still improving."""

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a training machine
import matplotlib.pyplot as plt  # noqa: E402

from .atomic import atomic_file  # noqa: E402
from .tasks import is_lower_better, metric_scale  # noqa: E402

CURVES_FILE = "training_curves.png"


def curves(log_history: list[dict]) -> tuple[dict[str, list], dict[str, list]]:
    """(training loss curves, validation score curves): name -> [(step, value)], from a Trainer log history."""
    losses, scores = {}, {}
    for entry in log_history:
        step = entry.get("step")
        for key, value in entry.items():
            if key.startswith("loss_"):  # per-task training loss, logged by MultitaskTrainer
                losses.setdefault(key.removeprefix("loss_"), []).append((step, value))
            # a task's scores only: losses and timings would crowd the picture
            elif key.startswith("eval_") and metric_scale(key.rsplit("_", 1)[-1]) is not None:
                scores.setdefault(key.removeprefix("eval_"), []).append((step, value))
    return losses, scores


def training_figure(log_history: list[dict]) -> plt.Figure | None:
    """The curves as a figure: training loss per task, and validation scores if any; None without a training loss."""
    losses, scores = curves(log_history)
    if not losses:
        return None
    panels = 2 if scores else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    loss_axis = axes[0][0]
    for task, points in losses.items():
        loss_axis.plot(*zip(*points), label=task)
    loss_axis.set(title="Training loss per task", xlabel="step", ylabel="loss")
    loss_axis.legend()
    if scores:
        score_axis = axes[0][1]
        for name, points in scores.items():
            metric = name.rsplit("_", 1)[-1]
            scale = metric_scale(metric)  # every task's scores on one 0-100 scale
            steps, values = zip(*points)
            # a lower-is-better score (loops) shares the axis: dashed and named so, it is not read as a falling score
            lower = is_lower_better(metric)
            score_axis.plot(
                steps,
                [scale * v for v in values],
                marker="o",
                linestyle="--" if lower else "-",
                label=f"{name} (lower is better)" if lower else name,
            )
        score_axis.set(title="Validation scores (0-100)", xlabel="step", ylabel="score")
        score_axis.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_training_curves(log_history: list[dict], path: str | os.PathLike) -> Path | None:
    """Draw the curves into a PNG at `path`; nothing (None) when the history holds no training loss."""
    fig = training_figure(log_history)
    if fig is None:
        return None
    with atomic_file(path, mode="wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def plot_run(output_dir: str | os.PathLike) -> Path | None:
    """The curves of the run whose `trainer_state.json` is in `output_dir`, drawn beside it."""
    state = Path(output_dir) / "trainer_state.json"
    if not state.is_file():
        return None
    return plot_training_curves(json.loads(state.read_text())["log_history"], Path(output_dir) / CURVES_FILE)
