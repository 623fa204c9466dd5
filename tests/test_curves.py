"""Training curves: per-task losses and validation scores from a log history, drawn into a PNG."""

from PIL import Image

from multitask_bert.curves import curves, plot_training_curves, training_figure

HISTORY = [
    {"step": 5, "loss": 3.0, "loss_sentiment": 0.7, "loss_translation": 6.0},
    {"step": 10, "loss": 2.0, "loss_sentiment": 0.5, "loss_translation": 4.0},
    {"step": 10, "eval_sst2_accuracy": 0.8, "eval_flores_chrfpp": 12.5, "eval_flores_loss": 4.2, "eval_combined": 46},
    {"step": 15, "loss_translation": 3.5},
]


def test_curves_per_task_and_per_set():
    losses, scores = curves(HISTORY)
    assert losses == {"sentiment": [(5, 0.7), (10, 0.5)], "translation": [(5, 6.0), (10, 4.0), (15, 3.5)]}
    assert scores == {"sst2_accuracy": [(10, 0.8)], "flores_chrfpp": [(10, 12.5)]}  # no losses, no combined


def test_png_is_written_only_for_a_history_with_training_losses(tmp_path):
    path = plot_training_curves(HISTORY, tmp_path / "curves.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100
    assert plot_training_curves([{"step": 1, "eval_x_bleu": 1.0}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_lower_is_better_scores_are_dashed_and_named_so():
    history = [*HISTORY, {"step": 10, "eval_flores_loops": 3.0}]
    fig = training_figure(history)
    lines = {line.get_label(): line.get_linestyle() for line in fig.axes[1].get_lines()}
    assert lines == {"sst2_accuracy": "-", "flores_chrfpp": "-", "flores_loops (lower is better)": "--"}
