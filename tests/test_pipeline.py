"""The multi-task pipeline and the prediction command, on a saved tiny model."""

import json

import pytest
import torch
from conftest import DEMO_DATA, ENGLISH
from transformers import pipeline

import app
import evaluate_model
import predict


def test_pipeline_gives_sentiment_and_translation(saved, tiny_model, tiny_tokenizer):
    pipe = pipeline(model=str(saved), trust_remote_code=True)
    result = pipe(ENGLISH[0], num_beams=2, max_new_tokens=6)
    assert set(result) == {"label", "score", "translation"}
    with torch.no_grad():
        enc = tiny_tokenizer(ENGLISH[0], return_tensors="pt")
        probs = tiny_model(**enc).sentiment_logits.softmax(-1)[0]
        expected = tiny_tokenizer.decode(
            tiny_model.generate(**enc, num_beams=2, max_new_tokens=6)[0], skip_special_tokens=True
        ).strip()
    assert result["label"] == tiny_model.config.id2label[int(probs.argmax())]
    assert result["score"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert result["translation"] == expected


def test_pipeline_batches_and_takes_settings_per_call(saved, tiny_tokenizer):
    pipe = pipeline(model=str(saved), trust_remote_code=True)
    one_by_one = [pipe(text, tasks="sentiment") for text in ENGLISH]
    batched = pipe(ENGLISH, batch_size=3, tasks="sentiment")
    for a, b in zip(one_by_one, batched):
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-5)
        assert "translation" not in b
    short = pipe(ENGLISH, tasks="translation", max_new_tokens=2, num_beams=1)
    for result in short:
        assert set(result) == {"translation"}
        assert len(tiny_tokenizer(result["translation"], add_special_tokens=False)["input_ids"]) <= 2
    with pytest.raises(ValueError, match="empty text"):
        pipe("   ")
    with pytest.raises(ValueError, match="tasks must be one of"):
        pipe(ENGLISH[0], tasks="summary")


def test_top_k_gives_every_class_from_the_same_pass(saved, tiny_model, tiny_tokenizer):
    pipe = pipeline(model=str(saved), trust_remote_code=True)
    settings = {"num_beams": 2, "max_new_tokens": 6}
    plain = pipe(ENGLISH[0], **settings)
    every = pipe(ENGLISH[0], top_k=None, **settings)
    with torch.no_grad():
        probs = tiny_model(**tiny_tokenizer(ENGLISH[0], return_tensors="pt")).sentiment_logits.softmax(-1)[0]
    assert {k: every[k] for k in plain} == plain  # the usual keys, unchanged
    ranked = probs.argsort(descending=True).tolist()
    assert [s["label"] for s in every["scores"]] == [tiny_model.config.id2label[i] for i in ranked]
    assert [s["score"] for s in every["scores"]] == pytest.approx(sorted(probs.tolist(), reverse=True), abs=1e-6)
    assert every["scores"][0] == {"label": plain["label"], "score": plain["score"]}
    assert pipe(ENGLISH[:2], tasks="sentiment", top_k=1)[1]["scores"] == [pipe(ENGLISH[1], tasks="sentiment")]
    with pytest.raises(ValueError, match="top_k must be a whole number of at least 1, got 0"):
        pipe(ENGLISH[0], top_k=0)
    with pytest.raises(ValueError, match="top_k ranks the sentiment classes"):
        pipe(ENGLISH[0], tasks="translation", top_k=None)


def test_predict_command_keeps_every_row(saved, tmp_path):
    rows = [
        {"text": ENGLISH[0]},
        {"text": ""},
        {"text": 42},
        {"text": "the film " * 40},
        {"other": "x"},
        {"text": ENGLISH[1]},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    out = tmp_path / "out.jsonl"
    errors = predict.main(
        [
            "--model",
            str(saved),
            "--input",
            str(source),
            "--output",
            str(out),
            "--batch_size",
            "2",
            "--num_beams",
            "1",
            "--max_new_tokens",
            "3",
        ]
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in records] == list(range(7)) and errors == 5
    assert {"label", "score", "translation"} <= set(records[0]) and records[0]["text"] == ENGLISH[0]
    assert records[1] == {"row": 1, "line": 2, "error": "empty text"}
    assert records[2]["error"] == "not text: int"
    assert records[3]["error"].startswith("too long:") and "at most 64" in records[3]["error"]
    assert records[4]["error"] == "no field 'text'"
    assert "label" in records[5]
    assert records[6]["line"] == 7 and records[6]["error"].startswith("not JSON: Expecting value")


def test_predict_command_from_arguments_and_csv(saved, tmp_path, capsys):
    predict.main(["--model", str(saved), "--text", ENGLISH[0], ENGLISH[1], "--task", "sentiment"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(r) for r in lines] == [{"row", "text", "label", "score"}] * 2
    (tmp_path / "in.csv").write_text("review\nthe film was great\n")
    predict.main(
        [
            "--model",
            str(saved),
            "--input",
            str(tmp_path / "in.csv"),
            "--text_column",
            "review",
            "--task",
            "translation",
            "--output",
            str(tmp_path / "o.jsonl"),
            "--max_new_tokens",
            "2",
        ]
    )
    assert set(json.loads((tmp_path / "o.jsonl").read_text())) == {"row", "text", "translation"}
    with pytest.raises(ValueError, match="no column 'text'"):
        predict.main(["--model", str(saved), "--input", str(tmp_path / "in.csv")])


@pytest.mark.parametrize("setting", [{"num_beams": 0}, {"max_new_tokens": 0}, {"max_length": -1}, {"num_beams": 2.5}])
def test_senseless_generation_settings_are_named(saved, setting):
    pipe = pipeline(model=str(saved), trust_remote_code=True)
    name, value = next(iter(setting.items()))
    with pytest.raises(ValueError, match=f"{name} must be a whole number of at least 1, got {value}"):
        pipe(ENGLISH[0], **setting)


def test_several_sequences_per_text_only_from_the_translation_pipeline(saved):
    # one "translation" per text: sequences were glued together, or given to the next texts of a batch
    with pytest.raises(ValueError, match="num_return_sequences: this pipeline gives one translation per text"):
        pipeline(model=str(saved), trust_remote_code=True)(ENGLISH[0], num_beams=2, num_return_sequences=2)
    translate = pipeline("translation", model=str(saved), trust_remote_code=True)
    assert len(translate(ENGLISH[0], num_beams=2, num_return_sequences=2, max_new_tokens=4)) == 2


def test_an_input_length_beyond_the_encoder_is_refused_before_any_text_runs(saved):
    pipe = pipeline(model=str(saved), trust_remote_code=True)
    with pytest.raises(ValueError, match="max_length 65 is more than the encoder's 64 positions"):
        pipe(ENGLISH[0], max_length=65)


@pytest.fixture
def translation_only(saved):
    """A saved model that names translation as its only trained task (a one-task run, a LoRA run's merged export)."""
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "trained_tasks": ["translation"]}))
    return saved


def test_an_untrained_head_is_refused_not_shown(translation_only, tmp_path):
    """Its answers would be random: the pipeline, predict.py, evaluate_model.py and the demo page refuse it by name,
    and the trained task still answers."""
    pipe = pipeline(model=str(translation_only), trust_remote_code=True)
    with pytest.raises(ValueError, match="model's sentiment head was not trained .*: ask tasks='translation'"):
        pipe("The film was wonderful.")
    with pytest.raises(ValueError, match="sentiment head was not trained"):
        pipe("The film was wonderful.", tasks="sentiment")
    assert set(pipe("The film was wonderful.", tasks="translation", max_new_tokens=3)) == {"translation"}
    chosen = pipeline(model=str(translation_only), trust_remote_code=True, tasks="translation", max_new_tokens=3)
    assert set(chosen("The film was wonderful.")) == {"translation"}  # the task chosen when the pipeline was made
    translate = pipeline("translation", model=str(translation_only), trust_remote_code=True)
    assert "translation_text" in translate("The film was wonderful.", max_new_tokens=3)[0]

    with pytest.raises(ValueError, match="--task both: .* has no trained sentiment head .*: give --task translation"):
        predict.main(["--model", str(translation_only), "--text", "hello"])
    predict.main(
        ["--model", str(translation_only), "--text", "hello", "--task", "translation", "--max_new_tokens", "2"]
    )
    with pytest.raises(ValueError, match="--sentiment_test: .* has no trained sentiment head"):
        evaluate_model.main(
            ["--model", str(translation_only), "--sentiment_test", str(DEMO_DATA / "sentiment_validation.jsonl")]
        )
    with pytest.raises(ValueError, match="the demo page shows sentiment and translation, and .* translation only"):
        app.build_demo(str(translation_only))
