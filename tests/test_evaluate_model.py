"""The `evaluate` metric module (metrics.py, loaded by path, offline) and the evaluation command on a tiny model."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sacrebleu
import torch
from conftest import DEMO_DATA, ROOT, write_jsonl
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from sklearn.metrics import accuracy_score, f1_score
from transformers import GenerationConfig

import evaluate_model
from multitask_bert import metrics
from multitask_bert.card import SCORED_BEGIN, SCORED_END, add_eval_results
from multitask_bert.data import DataArguments, load_task_data

SENTIMENT = str(DEMO_DATA / "sentiment_validation.jsonl")
TRANSLATION = str(DEMO_DATA / "translation_validation.jsonl")
HYPOTHESES = ["मी आज घरी जात आहे.", "हा चित्रपट छान होता", "The cat sat on the mat.", "स्टेशन कुठे आहे?", "आहे."]
REFERENCES = ["मी घरी जात आहे.", "हा चित्रपट खूप छान होता.", "The cat is on the mat.", "स्टेशन कुठे आहे?", "मला भूक लागली."]
PREDICTED = [0, 1, 1, 0, 2, 2, 1]
LABELS = [0, 1, 0, 0, 2, 1, 1]

LOAD_OFFLINE = """
import importlib.util, json, sys
import evaluate
path, hypotheses, references, predicted, labels = json.loads(sys.argv[1])
translation = evaluate.load(path, config_name="translation")
out = {
    "translation": translation.compute(predictions=hypotheses, references=references),
    "sentiment": evaluate.load(path, config_name="sentiment").compute(predictions=predicted, references=labels),
    "by_type": evaluate.load(path).compute(predictions=predicted, references=labels),
    "module_file": sys.modules[type(translation).__module__].__file__,
    "checkout_importable": importlib.util.find_spec("multitask_bert") is not None,
}
print(json.dumps(out, ensure_ascii=False))
"""


def test_metric_module_loads_by_path_offline_and_equals_sacrebleu_and_sklearn(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # offline, and any connection attempt goes to a closed local port: loading must need no network
    env.update(HF_EVALUATE_OFFLINE="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    arguments = json.dumps([str(ROOT / "multitask_bert" / "metrics.py"), HYPOTHESES, REFERENCES, PREDICTED, LABELS])
    done = subprocess.run(
        [sys.executable, "-c", LOAD_OFFLINE, arguments],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    # the copy in evaluate's modules cache was imported; the checkout was not even importable
    assert out["module_file"].startswith(str(tmp_path / "hf")) and not out["checkout_importable"]

    direct = {
        "bleu": sacrebleu.BLEU(tokenize="13a"),
        "chrf": sacrebleu.CHRF(),
        "chrfpp": sacrebleu.CHRF(word_order=2),
    }
    for name, metric in direct.items():
        assert out["translation"][name] == round(metric.corpus_score(HYPOTHESES, [REFERENCES]).score, 2)
        assert out["translation"]["signatures"][name] == str(metric.get_signature())
    assert (
        "tok:13a" in out["translation"]["signatures"]["bleu"] and "nw:2" in out["translation"]["signatures"]["chrfpp"]
    )
    expected = {
        "accuracy": round(accuracy_score(LABELS, PREDICTED), 4),
        "f1": round(f1_score(LABELS, PREDICTED, average="macro"), 4),
    }
    assert out["sentiment"] == out["by_type"] == expected
    assert expected["accuracy"] != expected["f1"]  # the example tells the two apart
    # training's plain import gives the same numbers
    scores, signatures = metrics.translation_scores(HYPOTHESES, REFERENCES)
    assert {**scores, "signatures": signatures} == out["translation"]
    assert metrics.sentiment_scores(PREDICTED, LABELS) == (expected, {})


# ---- the evaluation command ----------------------------------------------------------------------------------------


@pytest.fixture
def domain_set(tmp_path):
    """Sentiment rows with a domain column (one row without a domain)."""
    rows = [json.loads(line) for line in (DEMO_DATA / "sentiment_validation.jsonl").read_text().splitlines()[:9]]
    domains = ["films", "food", "shops"] * 3
    domains[4] = None
    path = tmp_path / "reviews_mr" / "test.jsonl"
    write_jsonl(path, [{**r, "domain": d} if d else r for r, d in zip(rows, domains)])
    return path, rows, domains


def expected_predictions(model, tokenizer, texts: list[str], task: str) -> list:
    """One sentence at a time, unpadded: what the command's sorted, padded batches must reproduce."""
    out = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=128, return_tensors="pt")
            if task == "sentiment":
                out.append(int(model(**enc).sentiment_logits.argmax(-1)))
            else:
                ids = model.generate(**enc, num_beams=2, max_new_tokens=6)[0]
                out.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
    return out


def run_args(saved, *extra: str) -> list[str]:
    return ["--model", str(saved), "--batch_size", "3", "--num_beams", "2", "--max_new_tokens", "6", *extra]


def test_table_and_json_hold_the_scores_of_one_sentence_at_a_time_predictions(
    saved, domain_set, tiny_model, tiny_tokenizer, tmp_path, capsys
):
    path, rows, domains = domain_set
    translation = DEMO_DATA / "translation_validation.jsonl"
    out = tmp_path / "results.json"
    arguments = run_args(saved, "--sentiment_test", str(path), SENTIMENT, "--translation_test", str(translation))
    arguments += ["--max_samples", "8", "--group_column", "domain", "--output_json", str(out)]
    assert evaluate_model.cli(arguments) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    sets = report["sets"]
    assert list(sets) == ["reviews_mr", "sentiment_validation", "translation_validation"]
    assert report["model"] == str(saved) and report["revision"] is None
    assert report["settings"]["num_beams"] == 2 and report["settings"]["max_samples"] == 8

    labels = [tiny_model.config.label2id[r["label"]] for r in rows[:8]]
    predicted = expected_predictions(tiny_model, tiny_tokenizer, [r["text"] for r in rows[:8]], "sentiment")
    assert sets["reviews_mr"]["scores"] == metrics.sentiment_scores(predicted, labels)[0]
    assert sets["reviews_mr"]["rows"] == 8 and sets["translation_validation"]["rows"] == 8
    groups = [d or "(missing)" for d in domains[:8]]
    for value in set(groups):
        rows_of = [i for i, g in enumerate(groups) if g == value]
        scores, _ = metrics.sentiment_scores([predicted[i] for i in rows_of], [labels[i] for i in rows_of])
        expected = scores["accuracy"]
        assert sets["reviews_mr"]["groups"][value] == {"accuracy": expected, "rows": len(rows_of)}
        assert f"accuracy domain={value}" in table
    assert "groups" not in sets["sentiment_validation"]  # a set without the column is scored as a whole

    pairs = [json.loads(line) for line in translation.read_text().splitlines()[:8]]
    hypotheses = expected_predictions(tiny_model, tiny_tokenizer, [p["en"] for p in pairs], "translation")
    scores, signatures = metrics.translation_scores(hypotheses, [p["mr"] for p in pairs])
    assert sets["translation_validation"]["scores"] == scores
    assert sets["translation_validation"]["signatures"] == signatures == report["signatures"]

    for name, result in sets.items():
        for metric, value in result["scores"].items():
            assert report["metrics"][f"test_{name}_{metric}"] == value
            line = next(row for row in table.splitlines() if row.startswith(f"| {name} ") and f" {metric} " in row)
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            assert cells == [name, result["task"], metric, f"{value:g}", str(result["rows"])]
    assert signatures["chrfpp"] in table


def test_predictions_file_and_generation_settings(saved, tiny_model, tiny_tokenizer, tmp_path, capsys):
    translation = DEMO_DATA / "translation_validation.jsonl"
    out = tmp_path / "predictions.jsonl"
    arguments = run_args(saved, "--translation_test", str(translation), "--max_samples", "4")
    assert evaluate_model.cli([*arguments, "--predictions", str(out), "--no_repeat_ngram_size", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    pairs = [json.loads(line) for line in translation.read_text().splitlines()[:4]]
    assert [(r["set"], r["row"], r["input"], r["reference"]) for r in rows] == [
        ("translation_validation", i, p["en"], p["mr"]) for i, p in enumerate(pairs)
    ]
    with torch.no_grad():
        for row, pair in zip(rows, pairs):
            enc = tiny_tokenizer(pair["en"], return_tensors="pt")
            ids = tiny_model.generate(**enc, num_beams=2, max_new_tokens=6, no_repeat_ngram_size=2)[0]
            assert row["prediction"] == tiny_tokenizer.decode(ids, skip_special_tokens=True).strip()


def test_generation_settings_given_are_used_zero_included_and_the_rest_are_the_models(saved, tmp_path):
    config = GenerationConfig.from_pretrained(saved)
    config.num_beams, config.no_repeat_ngram_size, config.length_penalty = 3, 2, 1.5  # a release's defaults
    config.save_pretrained(saved)
    out = tmp_path / "results.json"
    translation = ["--translation_test", str(DEMO_DATA / "translation_validation.jsonl"), "--max_samples", "2"]
    base = ["--model", str(saved), "--output_json", str(out), *translation]
    assert evaluate_model.cli([*base, "--no_repeat_ngram_size", "0", "--length_penalty", "0"]) == 0
    generation = json.loads(out.read_text())["generation"]
    # 0 given: the model's ban lifted, beam scores not normalised; unset: the model's own settings
    assert generation == {"num_beams": 3, "max_new_tokens": 64, "length_penalty": 0.0, "no_repeat_ngram_size": 0}
    # greedy: the model's length penalty (for beam search) is not recorded as if it shaped the translations
    assert evaluate_model.cli([*base, "--num_beams", "1"]) == 0
    assert json.loads(out.read_text())["generation"] == {
        "num_beams": 1,
        "max_new_tokens": 64,
        "no_repeat_ngram_size": 2,
    }


def test_a_spread_sample_names_the_files_rows_and_says_how_it_was_drawn(saved, tmp_path):
    pairs = [json.loads(line) for line in (DEMO_DATA / "translation_validation.jsonl").read_text().splitlines()]
    out = tmp_path / "predictions.jsonl"
    arguments = run_args(saved, "--translation_test", TRANSLATION, "--max_samples", "4", "--samples_from", "spread")
    sets = evaluate_model.main([*arguments, "--predictions", str(out), "--add_to_card"])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["row"], r["input"], r["reference"]) for r in rows] == [
        (i, pairs[i]["en"], pairs[i]["mr"]) for i in (0, 10, 20, 30)
    ]
    assert sets["translation_validation"]["rows"] == 4
    assert (
        "| 4 of 40 rows, in equal steps through it; inputs cut at 64 tokens; beam 2"
        in (saved / "README.md").read_text()
    )


def test_a_cap_above_the_sets_size_is_recorded_as_the_whole_set(saved):
    arguments = run_args(saved, "--translation_test", TRANSLATION, "--max_samples", "1000", "--add_to_card")
    sets = evaluate_model.main(arguments)
    assert sets["translation_validation"]["rows"] == 40
    card = (saved / "README.md").read_text()
    assert "| whole set; inputs cut at 64 tokens; beam 2" in card and "1,000" not in card


def test_add_to_card_keeps_earlier_results(saved, tmp_path, capsys):
    earlier = EvalResult(
        task_type="translation",
        dataset_type="news",
        dataset_name="news",
        dataset_split="test",
        metric_type="bleu",
        metric_value=1.5,
    )
    metadata = ModelCardData(model_name="tiny", eval_results=[earlier]).to_yaml()
    ModelCard(f"---\n{metadata}\n---\n\n# tiny\n").save(saved / "README.md")
    arguments = run_args(saved, "--sentiment_test", SENTIMENT, "--translation_test", TRANSLATION, "--max_samples", "4")
    arguments.append("--add_to_card")
    sets = evaluate_model.main(arguments)
    evaluate_model.main(arguments)  # a second run replaces its results instead of adding them again
    card = ModelCard.load(saved / "README.md")
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert len(card.data.eval_results) == len(results) == 1 + 2 + 4  # earlier; accuracy, F1; BLEU, chrF, chrF++, loops
    assert results[("translation_validation", "loops")] == sets["translation_validation"]["scores"]["loops"]
    assert results[("news", "bleu")] == 1.5 and card.data.model_name == "tiny"
    assert results[("sentiment_validation", "accuracy")] == sets["sentiment_validation"]["scores"]["accuracy"]
    assert results[("sentiment_validation", "f1")] == sets["sentiment_validation"]["scores"]["f1"]
    assert results[("translation_validation", "chrf++")] == sets["translation_validation"]["scores"]["chrfpp"]
    assert results[("translation_validation", "bleu")] == sets["translation_validation"]["scores"]["bleu"]
    assert not list(saved.glob(".README.md.partial-*"))
    # the body shows the model-index as one table, once however often the command ran, with how each set was scored
    body = card.text
    assert body.count(SCORED_BEGIN) == 1 and body.count(SCORED_END) == 1
    assert body.index("## Results") < body.index(SCORED_BEGIN)  # a card without that heading gets one
    section = body[body.index(SCORED_BEGIN) : body.index(SCORED_END)]
    accuracy = sets["sentiment_validation"]["scores"]["accuracy"]
    assert f"| sentiment_validation | validation | 4 | {accuracy:g} |" in section
    assert "| news | test |  | " in section  # scored elsewhere: its figure, no settings
    assert "| the first 4 of 40 rows; inputs cut at 64 tokens; beam 2, length_penalty" in section
    # the splits are the sources' own (file names saying validation), not the command's "test" role
    assert {r.dataset_split for r in card.data.eval_results if r.dataset_name != "news"} == {"validation"}


def test_concurrent_runs_on_one_card_keep_each_others_results(saved):
    """Two evaluations of one folder at once (say the validation and the test sets, one process each) both land."""

    def add(i: int) -> None:
        result = EvalResult(
            task_type="translation",
            dataset_type=f"set{i}",
            dataset_name=f"set{i}",
            dataset_split="test",
            metric_type="bleu",
            metric_value=float(i),
        )
        add_eval_results(str(saved), [result], scored_with={f"set{i}/test": {"rows": i, "settings": "whole set"}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, range(16)))
    card = ModelCard.load(saved / "README.md")
    assert sorted(r.metric_value for r in card.data.eval_results) == [float(i) for i in range(16)]
    assert len(card.data["scored_with"]) == 16 and card.text.count("| set") == 16 + 1  # the rows and the header


def test_split_is_the_sources_own(saved, tmp_path):
    test_file = tmp_path / "news" / "test.jsonl"
    test_file.parent.mkdir()
    test_file.write_text((DEMO_DATA / "translation_validation.jsonl").read_text())
    arguments = run_args(saved, "--translation_test", TRANSLATION, str(test_file), "--max_samples", "2")
    sets = evaluate_model.main([*arguments, "--output_json", str(tmp_path / "r.json")])
    assert {name: entry["split"] for name, entry in sets.items()} == {
        "translation_validation": "validation",
        "news": "test",
    }


def test_data_errors_are_training_errors(saved, tmp_path, tiny_tokenizer, capsys, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "positive"}\n{"text": "broken", \n')
    with pytest.raises(ValueError) as training:
        no_other_sets = dict(sentiment_train=None, sentiment_validation=None, translation_train=None)
        data_args = DataArguments(**no_other_sets, translation_validation=None, sentiment_test=[str(bad)])
        load_task_data(data_args, tiny_tokenizer, {"negative": 0, "positive": 1})
    monkeypatch.setattr(evaluate_model.AutoModel, "from_pretrained", model_must_not_load)
    assert evaluate_model.cli(run_args(saved, "--sentiment_test", str(bad))) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"evaluate_model.py: error: {training.value}"


def test_an_output_file_that_is_a_test_set_or_the_other_output_is_refused(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate_model.AutoModel, "from_pretrained", model_must_not_load)
    data = tmp_path / "mine.jsonl"
    data.write_bytes(Path(SENTIMENT).read_bytes())
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    cases = [
        (["--predictions", str(data)], f"--predictions {data} is the test set {data} (--sentiment_test)"),
        (["--output_json", str(link)], f"--output_json {link} is the test set {data} (--sentiment_test)"),
        (["--predictions", "out.json", "--output_json", "./out.json"], "name one file, ./out.json: give two"),
    ]
    monkeypatch.chdir(tmp_path)
    for extra, message in cases:
        assert evaluate_model.cli(["--model", str(saved), "--sentiment_test", str(data), *extra]) == 2
        assert message in capsys.readouterr().err
    assert data.read_bytes() == Path(SENTIMENT).read_bytes() and not (tmp_path / "out.json").exists()


def model_must_not_load(*args, **kwargs):
    raise AssertionError("the model was loaded before the arguments were checked")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--num_beams", "0"], "num_beams must be at least 1, got 0"),
        (["--max_new_tokens", "0"], "max_new_tokens must be at least 1, got 0"),
        (["--batch_size", "-1"], "batch_size must be at least 1, got -1"),
        (["--max_samples", "0"], "max_samples must be at least 1, got 0"),
        (["--samples_from", "last"], "samples_from must be one of first, spread; got 'last'"),
        (["--samples_from", "spread"], "--samples_from spread chooses the rows a cap on the rows keeps"),
        (["--sentiment_test", "none"], "give at least one test set"),
        (["--add_to_card"], "is not one"),
        (["--num_beams", "2"], "holds LoRA adapters (translation)"),
        (["--revision", "abc123"], "--revision pins a Hub commit"),
        (["--output_json", "."], "--output_json . is a folder"),
        (["--predictions", "."], "--predictions . is a folder"),  # found after scoring, it would lose the scores
        (["--no_repeat_ngram_size", "-1"], "no_repeat_ngram_size must be 0 (no ban) or more, got -1"),
        (
            ["--max_source_length", "65"],
            "--max_source_length 65 is longer than the model's encoder takes (64 positions)",
        ),
        (["--max_new_tokens", "65"], "--max_new_tokens 65 is longer than the model's decoder takes (64 positions)"),
        (["--sentiment_test", "missing.jsonl"], "missing.jsonl"),
        (["--text_column", "review"], "has no column 'review'"),
        (["--group_column", "domian"], "no sentiment test set has that column"),
        (
            ["--translation_test", TRANSLATION, "--sentiment_test", "none", "--group_column", "x"],
            "give a --sentiment_test",
        ),
    ],
)
def test_bad_arguments_are_refused_before_the_model_loads(saved, extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate_model.AutoModel, "from_pretrained", model_must_not_load)
    monkeypatch.chdir(tmp_path)
    model = "someone/model" if extra == ["--add_to_card"] else str(saved)
    if extra == ["--num_beams", "2"]:  # a LoRA run's folder: the base model and one folder per task's adapter
        (saved / "translation").mkdir()
        (saved / "translation" / "adapter_config.json").write_text("{}")
    sets = [] if "--sentiment_test" in extra else ["--sentiment_test", SENTIMENT]
    assert evaluate_model.cli(["--model", model, *sets, *extra]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("evaluate_model.py: error: ") and message in error
