"""train.py under faults: a Hub token never reaches a file, earlier runs are never trained over unasked, a kill
mid-save leaves no half-written model or checkpoint under its final name, damaged checkpoints are refused by name, a run
resumed after its last step trains no further, the card names no local path."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import (
    CHECKPOINTS,
    DEMO_DATA,
    PROJECT_ENV,
    ROOT,
    continue_train_args,
    tiny_train_args,
    write_bare_card,
)
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertModel

import train
from multitask_bert import atomic, build
from multitask_bert.lora import load_task_adapters
from multitask_bert.run_layout import RUN_ARGUMENTS, RunLayout

SECRET = "hf_SECRETxyz"
NO_CHECKPOINTS = ["--save_strategy", "no", "--eval_strategy", "no", "--load_best_model_at_end", "false"]

# train.py in a child process that SIGKILLs itself mid-save: KILL_AT=tokenizer when Trainer saves the tokenizer (the
# weights are written by then), KILL_AT=install after the second file of the final folder has moved in.
KILLED_RUN = """
import os, signal, sys
import train
from multitask_bert import atomic

def kill(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

class KilledTrainer(train.MultitaskTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if os.environ["KILL_AT"] == "tokenizer":
            self.processing_class.save_pretrained = kill

if os.environ["KILL_AT"] == "install":
    moved, move = [], atomic.move_into_place

    def move_then_kill(source, target):
        move(source, target)
        moved.append(target)
        if len(moved) == 2:
            kill()

    atomic.move_into_place = move_then_kill
train.MultitaskTrainer = KilledTrainer
train.main(sys.argv[1:])
"""


def run_killed(kill_at: str, args: list[str]) -> None:
    env = {**PROJECT_ENV, "KILL_AT": kill_at}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, *args], cwd=ROOT, env=env, capture_output=True, timeout=600
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-3000:]


def files_under(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


def test_hub_token_reaches_no_file_only_the_upload(tiny_bert_dir, tmp_path, monkeypatch):
    uploads = []
    monkeypatch.setattr(train.HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(train.HfApi, "upload_folder", lambda self, **kw: uploads.append(self.token))
    out = tmp_path / "out"
    train.main(
        tiny_train_args(
            tiny_bert_dir,
            out,
            *CHECKPOINTS,
            "--report_to",
            "tensorboard",
            "--hub_token",
            SECRET,
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "someone/mt",
        )
    )
    assert uploads == [SECRET]  # the token still authenticates the upload
    files = files_under(out)
    assert any(f.name == "training_args.bin" for f in files) and any("tfevents" in f.name for f in files)
    leaked = [str(f.relative_to(out)) for f in files if SECRET.encode() in f.read_bytes()]
    assert not leaked, f"the Hub token is written into {leaked}"


@pytest.fixture(scope="module")
def checkpointed_run(tiny_bert_dir, tmp_path_factory):
    """A finished run that kept checkpoints 3, 6, 9 and 12."""
    out = tmp_path_factory.mktemp("checkpointed") / "model"
    train.main(tiny_train_args(tiny_bert_dir, out, *CHECKPOINTS))
    return out


def test_unfinished_run_is_refused_with_how_to_resume(tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    args = tiny_train_args(tiny_bert_dir, out, "--lora", "--lora_r", "4", *CHECKPOINTS)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "kill_after_save.py"), "3", *args],
        cwd=ROOT,
        env=PROJECT_ENV,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-3000:]
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == ["checkpoint-3"]  # no config.json: a LoRA run's base joins the folder with its adapters
    before = {f: f.read_bytes() for f in files_under(out / "checkpoint-3")}

    with pytest.raises(FileExistsError, match="unfinished run") as refused:
        train.main(args)
    message = str(refused.value)
    assert f"--resume_from_checkpoint {out / 'checkpoint-3'}" in message
    assert "--resume_from_checkpoint true" in message and "--overwrite_output_dir" in message
    assert {f: f.read_bytes() for f in files_under(out / "checkpoint-3")} == before  # untouched
    assert not (out / "config.json").exists()

    train.main(args + ["--resume_from_checkpoint", "true"])  # the latest checkpoint, as Trainer means it
    assert {"config.json", "sentiment", "translation", "checkpoint-12"} <= set(os.listdir(out))
    assert not RunLayout(out).lora_base.exists()
    load_task_adapters(str(out))


def test_non_empty_output_dir_needs_overwrite(tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty \\(notes.txt\\).*--overwrite_output_dir"):
        train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS))
    assert os.listdir(out) == ["notes.txt"]
    train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS, "--overwrite_output_dir", "true"))
    assert (out / "notes.txt").read_text() == "mine" and (out / "config.json").is_file()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        train.main(tiny_train_args(tiny_bert_dir, out, "--resume_from_checkpoint", "true"))


def test_another_runs_checkpoint_does_not_resume_over_a_finished_model(tiny_bert_dir, checkpointed_run, tmp_path):
    out = tmp_path / "out"
    train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS))
    before = {f: f.read_bytes() for f in files_under(out)}
    resume = ["--resume_from_checkpoint", str(checkpointed_run / "checkpoint-9")]
    with pytest.raises(FileExistsError, match="already holds a trained model"):
        train.main(tiny_train_args(tiny_bert_dir, out, *CHECKPOINTS, *resume))
    assert {f: f.read_bytes() for f in files_under(out)} == before


def test_overwriting_a_run_leaves_none_of_its_outputs_beside_the_new_model(tiny_bert_dir, tmp_path):
    """A run that writes no checkpoint, scores or curves over an earlier run's folder: the earlier run's checkpoint
    (which --resume_from_checkpoint true would pick), merged export, scores and curves are gone, not read as this
    run's; a file of the user's stays."""
    out = tmp_path / "out"
    train.main(tiny_train_args(tiny_bert_dir, out))
    shutil.copytree(out / "checkpoint-12", out / "merged-translation")  # as a LoRA run's --merge_adapter leaves it
    (out / "notes.txt").write_text("mine")
    earlier = ["checkpoint-12", "merged-translation", "eval_results.json", "training_curves.png"]
    assert all((out / name).exists() for name in earlier)
    quiet = ["--do_train", "--save_strategy", "no", "--logging_steps", "1000", "--overwrite_output_dir", "true"]
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):  # a run stopped by a check removes nothing
        train.main(tiny_train_args(tiny_bert_dir, out, *quiet, "--sentiment_train", str(tmp_path / "missing.jsonl")))
    assert all((out / name).exists() for name in earlier)
    train.main(tiny_train_args(tiny_bert_dir, out, *quiet))
    assert [name for name in earlier if (out / name).exists()] == []
    assert RunLayout(out).holds_model() and (out / "notes.txt").read_text() == "mine"


def test_the_card_names_a_best_step_only_where_its_weights_were_loaded(tmp_path):
    """Trainer skips a best checkpoint whose folder is gone (a resume from a checkpoint copied away from its run):
    the run ends with its last weights, and the card must not call them the best step's."""

    def trainer(best_checkpoint, load_best=True):
        state = SimpleNamespace(best_model_checkpoint=best_checkpoint and str(best_checkpoint), best_global_step=3)
        return SimpleNamespace(args=SimpleNamespace(load_best_model_at_end=load_best), state=state)

    (tmp_path / "checkpoint-3").mkdir()
    assert train.best_step(trainer(tmp_path / "checkpoint-3")) == 3
    assert train.best_step(trainer(tmp_path / "gone" / "checkpoint-3")) is None
    assert train.best_step(trainer(tmp_path / "checkpoint-3", load_best=False)) is None
    assert train.best_step(trainer(None)) is None


def test_overwriting_a_lora_runs_folder_with_a_plain_run_is_refused(tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    (out / "sentiment").mkdir(parents=True)  # a LoRA run's folder: the base, and one folder per task's adapter
    (out / "sentiment" / "adapter_config.json").write_text("{}")
    overwrite = ["--overwrite_output_dir", "true"]
    with pytest.raises(FileExistsError, match=r"holds a LoRA run's adapters \(sentiment\), which --overwrite_output"):
        train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS, *overwrite))
    assert os.listdir(out) == ["sentiment"]
    train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS, *overwrite, "--lora", "--lora_r", "4"))
    assert RunLayout(out).adapters() == ["sentiment", "translation"]  # a LoRA run writes its own over them
    load_task_adapters(str(out))


@pytest.mark.parametrize(
    "extra, message",
    [
        (  # Trainer would look it up only after the first evaluation, and stop there with nothing saved
            ["--metric_for_best_model", "loss"],
            "--metric_for_best_model loss: the evaluations log no such metric; they log eval_combined, "
            "eval_sentiment_validation_loss, eval_sentiment_validation_accuracy",
        ),
        (
            ["--sentiment_train", "none", "--translation_train", "none"],
            "no training data: --sentiment_train and --translation_train are all none",
        ),
        (
            ["--max_train_samples", "3", "--translation_train_concat", "4"],
            "--translation_train_concat 4 joins that many pairs into each example, and it has 3 row(s)",
        ),
    ],
)
def test_a_run_that_cannot_train_as_asked_is_refused_before_training(
    tiny_bert_dir, tmp_path, extra, message, monkeypatch
):
    if extra[0] != "--max_train_samples":  # known from the options alone: before the model loads
        monkeypatch.setattr(train, "load_model", lambda model_args: pytest.fail("the model was loaded first"))
    with pytest.raises(ValueError, match=re.escape(message)):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", *extra))
    assert not (tmp_path / "out").exists()


def test_a_run_over_an_earlier_one_keeps_none_of_its_results(tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "all_results.json").write_text(json.dumps({"test_an_old_set_bleu": 12.0}))  # an earlier run's
    train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS, "--overwrite_output_dir", "true"))
    results = json.loads((out / "all_results.json").read_text())
    assert "test_an_old_set_bleu" not in results
    assert {"train_loss", "eval_combined"} <= results.keys()  # this run's train and eval results, together
    assert json.loads((out / "eval_results.json").read_text()).items() <= results.items()


def test_kill_mid_checkpoint_save_leaves_no_half_checkpoint(tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    run_killed("tokenizer", tiny_train_args(tiny_bert_dir, out, *CHECKPOINTS))  # killed saving checkpoint-3
    assert not [p.name for p in out.iterdir() if not p.name.startswith(".")]  # no checkpoint-3, no config.json
    (staged,) = [p for p in out.iterdir() if p.name.startswith(".checkpoint-3")]
    assert "model.safetensors" in {f.name for f in files_under(staged)}  # killed mid-save: weights, no tokenizer
    with pytest.raises((OSError, ValueError), match="config.json"):
        AutoModel.from_pretrained(out, trust_remote_code=True)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        train.main(tiny_train_args(tiny_bert_dir, out, *CHECKPOINTS, "--resume_from_checkpoint", "true"))


def test_kill_mid_final_save_leaves_the_old_model_or_none(tiny_bert_dir, tmp_path):
    fresh = tmp_path / "fresh"
    run_killed("tokenizer", tiny_train_args(tiny_bert_dir, fresh, *NO_CHECKPOINTS))
    assert not (fresh / "config.json").exists() and not (fresh / "model.safetensors").exists()
    with pytest.raises((OSError, ValueError), match="config.json"):
        AutoModel.from_pretrained(fresh, trust_remote_code=True)

    out = tmp_path / "out"
    train.main(tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS))
    weights = (out / "model.safetensors").read_bytes()
    again = tiny_train_args(tiny_bert_dir, out, *NO_CHECKPOINTS, "--overwrite_output_dir", "true", "--seed", "7")
    run_killed("tokenizer", again)  # before anything moved in: the old model stays, whole
    assert (out / "model.safetensors").read_bytes() == weights and (out / "tokenizer.json").is_file()
    AutoModel.from_pretrained(out, trust_remote_code=True)
    AutoTokenizer.from_pretrained(out, trust_remote_code=True)

    run_killed("install", again)  # while the new files move in: the old config.json went first
    assert not (out / "config.json").exists()
    with pytest.raises((OSError, ValueError), match="config.json"):
        AutoModel.from_pretrained(out, trust_remote_code=True)


def damage(path: Path, how: str) -> None:
    if how == "delete":
        path.unlink()
    else:
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize(
    "name, how",
    [
        ("optimizer.pt", "truncate"),
        ("scheduler.pt", "delete"),
        ("rng_state.pth", "delete"),
        ("trainer_state.json", "truncate"),
        ("model.safetensors", "truncate"),
    ],
)
def test_resume_refuses_a_damaged_checkpoint_by_name(checkpointed_run, tiny_bert_dir, tmp_path, monkeypatch, name, how):
    checkpoint = Path(shutil.copytree(checkpointed_run / "checkpoint-6", tmp_path / "checkpoint-6"))
    damage(checkpoint / name, how)
    monkeypatch.setattr(train, "load_model", lambda model_args: pytest.fail("the model was loaded before the check"))
    with pytest.raises(ValueError, match=f"cannot resume from {checkpoint}: {re.escape(name)} is"):
        train.main(
            tiny_train_args(tiny_bert_dir, tmp_path / "out", *CHECKPOINTS, "--resume_from_checkpoint", str(checkpoint))
        )


def test_resume_from_an_intact_checkpoint(checkpointed_run, tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    args = tiny_train_args(tiny_bert_dir, out, *CHECKPOINTS, "--resume_from_checkpoint", "true")
    shutil.copytree(checkpointed_run / "checkpoint-6", out / "checkpoint-6")
    # an option newer than the checkpoint, which does not record it, is not a difference
    recorded = json.loads((out / "checkpoint-6" / RUN_ARGUMENTS).read_text())
    del recorded["sampling_temperature"]
    (out / "checkpoint-6" / RUN_ARGUMENTS).write_text(json.dumps(recorded))
    train.main(args)
    assert (out / "config.json").is_file() and (out / "checkpoint-12").is_dir()


@pytest.mark.parametrize(
    "changed, message",
    [
        (["--max_train_samples", "20"], "--max_train_samples 24 -> 20"),
        (["--seed", "7"], "--seed 42 -> 7"),
        (["--learning_rate", "5e-3"], "--learning_rate 0.001 -> 0.005"),
        (["--sentiment_train", "none"], "--sentiment_train \\['.*sentiment_train.jsonl'\\] -> None"),
        (["--task_sampling", "round_robin"], "--task_sampling 'proportional' -> 'round_robin'"),
    ],
)
def test_a_resume_with_other_data_batches_or_optimisation_is_refused(
    checkpointed_run, tiny_bert_dir, tmp_path, monkeypatch, changed, message
):
    """A resume continues its checkpoint's run: other data, batches or rates would make a model neither run
    describes (the README promises the uninterrupted run's data order and weights). Said before the model loads."""
    checkpoint = checkpointed_run / "checkpoint-6"
    monkeypatch.setattr(train, "load_model", lambda model_args: pytest.fail("the model was loaded before the check"))
    args = tiny_train_args(tiny_bert_dir, tmp_path / "out", *CHECKPOINTS, "--resume_from_checkpoint", str(checkpoint))
    with pytest.raises(ValueError, match=f"continues a run with other options \\({message}\\): resume with that"):
        train.main([*args, *changed])


def test_resuming_a_run_that_finished_training_trains_no_further_step(checkpointed_run, tiny_bert_dir, tmp_path):
    # stopped after its last checkpoint (in the final evaluation or save), mid-epoch: resumed, it only finishes
    out = tmp_path / "out"
    last = Path(shutil.copytree(checkpointed_run / "checkpoint-6", out / "checkpoint-6"))
    train.main(
        tiny_train_args(tiny_bert_dir, out, *CHECKPOINTS, "--max_steps", "6", "--resume_from_checkpoint", "true")
    )
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-6"]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
    final, trained = load_file(out / "model.safetensors"), load_file(last / "model.safetensors")
    assert final.keys() == trained.keys() and all(torch.equal(final[k], trained[k]) for k in final)


def test_model_revision_reaches_model_and_tokenizer(saved, monkeypatch):
    calls = []

    def recording(what, load):
        def from_pretrained(path, **kwargs):
            calls.append((what, kwargs.pop("revision", None)))
            return load(saved, **kwargs)  # the Hub repo, answered by a local folder

        return SimpleNamespace(from_pretrained=from_pretrained)

    monkeypatch.setattr(train, "AutoModel", recording("model", AutoModel.from_pretrained))
    monkeypatch.setattr(train, "AutoTokenizer", recording("tokenizer", AutoTokenizer.from_pretrained))
    model_args, _, _ = train.parse_args(
        ["--model_name_or_path", "someone/multitask-bert", "--model_revision", "0123abc", "--output_dir", "x"]
    )
    train.load_model(model_args)
    assert calls == [("model", "0123abc"), ("tokenizer", "0123abc")]
    with pytest.raises(ValueError, match="--model_revision pins a Hub model"):
        train.ModelArguments(model_revision="0123abc")


def test_arguments_that_shape_a_fresh_model_are_refused_when_continuing_a_saved_one():
    """--decoder_layers, --base_model and --classifier_pooling build a fresh model: continuing a saved one they would
    be ignored, so they are refused by name."""
    with pytest.raises(ValueError, match=r"--decoder_layers shape\(s\) a fresh model.*drop --decoder_layers"):
        train.parse_args(["--model_name_or_path", "reference", "--decoder_layers", "6", "--output_dir", "x"])
    with pytest.raises(ValueError, match="drop --base_model, --classifier_pooling"):
        train.ModelArguments(model_name_or_path="reference", base_model="bert-base-cased", classifier_pooling="cls")
    with pytest.raises(ValueError, match="drop --decoder_layers, --classifier_pooling"):  # given at their defaults
        train.parse_args(["--model_name_or_path", "x", "--decoder_layers", "4", "--classifier_pooling=mean"])
    train.ModelArguments(model_name_or_path="reference", lora=True, trim_vocab=True)  # these apply to a saved model


def test_continuing_a_folder_that_is_no_plain_multitask_model_is_refused(saved, tiny_bert_dir, tmp_path):
    """A LoRA run's folder would continue from its base without the adapters; a plain BERT folder, a revision beside a
    folder: refused by name before any work."""
    (saved / "sentiment").mkdir()
    (saved / "sentiment" / "adapter_config.json").write_text("{}")
    out = ["--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match=r"holds LoRA adapters \(sentiment\): train.py runs plain models"):
        train.parse_args(["--model_name_or_path", str(saved), *out])
    with pytest.raises(ValueError, match="is not a multitask-bert model"):
        train.parse_args(["--model_name_or_path", str(tiny_bert_dir), *out])
    shutil.rmtree(saved / "sentiment")
    with pytest.raises(ValueError, match="--model_revision pins a Hub commit, and .* is a local folder"):
        train.parse_args(["--model_name_or_path", str(saved), "--model_revision", "abc123", *out])
    with pytest.raises(ValueError, match="--model_revision pins a Hub commit, and --base_model .* is a local folder"):
        train.parse_args(["--base_model", str(tiny_bert_dir), "--model_revision", "abc123", *out])


def test_shaping_options_are_refused_however_they_are_given(tmp_path):
    """A recipe's shaping key at its default value, an option spelt with dashes: both given, both refused beside
    --model_name_or_path. An abbreviated option is an error: no option goes unseen by the checks."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("decoder_layers: 4\nlearning_rate: 1.0e-4\n")
    with pytest.raises(ValueError, match="drop --decoder_layers"):
        train.parse_args([str(recipe), "--model_name_or_path", "x", "--output_dir", "x"])
    with pytest.raises(ValueError, match="drop --decoder_layers"):
        train.parse_args(["--model_name_or_path", "x", "--decoder-layers", "4", "--output_dir", "x"])
    with pytest.raises(ValueError, match="not used.*--decoder_lay"):
        train.parse_args(["--model_name_or_path", "x", "--decoder_lay", "6", "--output_dir", "x"])
    recipe.write_text("learning_rate: 1.0e-4\n")
    _, _, training_args = train.parse_args([str(recipe), "--model_name_or_path", "x", "--output_dir", "x"])
    assert training_args.learning_rate == 1e-4


@pytest.mark.parametrize(
    "given, message",
    [
        (["--predict_with_generate", "false"], "--predict_with_generate False: evaluation scores each set in its own"),
        (["--prediction_loss_only", "true"], "--prediction_loss_only True: evaluation scores"),
        (["--sortish_sampler", "true"], "--sortish_sampler True: batches are grouped by length already"),
        (["--hub_strategy", "all_checkpoints"], "--hub_strategy all_checkpoints: the finished folder is pushed once"),
        (["--no_eval_do_concat_batches"], "--eval_do_concat_batches False: evaluation scores each set"),
        (["--eval_accumulation_steps", "2"], "--eval_accumulation_steps 2: evaluation scores"),
        (["--lora_r", "2"], "--lora_r applies with --lora only"),
        (["--sampling_temperature", "0.5"], "--sampling_temperature applies with --task_sampling temperature only"),
        (["--samples_from", "spread"], "--samples_from spread chooses the rows a cap on the rows keeps, and there is"),
    ],
)
def test_options_that_would_have_no_effect_are_refused(given, message):
    """Accepted, they changed nothing: a Trainer option train.py has no use for, or one missing its partner."""
    with pytest.raises(ValueError, match=message):
        train.parse_args([*given, "--output_dir", "x"])


def test_options_that_say_what_train_does_anyway_are_accepted():
    """The HF example scripts' habits, and each partner-dependent option with its partner."""
    train.parse_args(["--predict_with_generate", "--hub_strategy", "end", "--output_dir", "x"])
    train.parse_args(["--lora", "--lora_r", "2", "--output_dir", "x"])
    train.parse_args(["--task_sampling", "temperature", "--sampling_temperature", "3", "--output_dir", "x"])
    train.parse_args(["--max_eval_samples", "10", "--samples_from", "spread", "--output_dir", "x"])


def test_do_options_run_the_phases_they_name(tmp_path):
    """As in the HF example scripts: --do_train alone trains without evaluating (the demo validation sets, a default,
    are dropped); --do_train --do_eval evaluates; without --do_* every phase the data gives runs. A phase named
    without its sets, or sets given to a phase left out, is an error."""

    def phases(*args):
        _, data_args, training_args = train.parse_args([*args, "--output_dir", str(tmp_path / "out")])
        validation = [s.name for task in ("sentiment", "translation") for s in data_args.sources(task, "validation")]
        return validation, training_args.eval_strategy, training_args.load_best_model_at_end

    demo = ["sentiment_validation", "translation_validation"]
    assert phases() == (demo, "epoch", True)
    assert phases("--do_train", "--do_eval") == (demo, "epoch", True)
    assert phases("--do_train") == ([], "no", False)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("do_train: true\n")
    assert phases(str(recipe)) == ([], "no", False)
    with pytest.raises(ValueError, match="--do_eval without --do_train: train.py trains.*evaluate_model.py"):
        phases("--do_eval")
    with pytest.raises(ValueError, match="--do_predict: this run has no test sets"):
        phases("--do_train", "--do_predict")
    with pytest.raises(ValueError, match="--translation_validation give.* leaves out --do_eval"):
        phases("--do_train", "--translation_validation", str(DEMO_DATA / "translation_validation.jsonl"))
    with pytest.raises(ValueError, match="--do_eval: this run has no validation sets"):
        phases("--do_train", "--do_eval", "--sentiment_validation", "none", "--translation_validation", "none")
    with pytest.raises(
        ValueError, match="--eval_strategy steps: this run has no validation sets to evaluate; add --do_eval, or"
    ):
        phases("--do_train", "--eval_strategy", "steps")


def test_a_run_without_validation_sets_trains_without_evaluating(tiny_bert_dir, tmp_path):
    """No validation set: no evaluation (Trainer refused the run after the data loaded); an --eval_strategy that
    evaluates is refused before any work."""
    none = ["--sentiment_validation", "none", "--translation_validation", "none"]
    with pytest.raises(ValueError, match="--eval_strategy steps: this run has no validation sets"):
        train.parse_args([*none, "--eval_strategy", "steps", "--output_dir", str(tmp_path / "x")])
    metrics = train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", *none))
    assert metrics == {}
    assert RunLayout(tmp_path / "out").holds_model() and not (tmp_path / "out" / "eval_results.json").exists()


def test_model_revision_pins_a_hub_base_model(tiny_bert_dir, monkeypatch):
    """A run warm-started from a Hub BERT loads its config, weights and tokenizer at the revision given."""
    calls = []

    def recording(what, cls):
        def from_pretrained(path, *args, **kwargs):
            calls.append((what, kwargs.pop("revision", None)))
            return cls.from_pretrained(tiny_bert_dir, *args, **kwargs)  # the Hub, answered by a local BERT

        return SimpleNamespace(from_pretrained=from_pretrained)

    monkeypatch.setattr(build, "AutoConfig", recording("config", AutoConfig))
    monkeypatch.setattr(build, "BertModel", recording("weights", BertModel))
    monkeypatch.setattr(build, "AutoTokenizer", recording("tokenizer", AutoTokenizer))
    model_args, _, _ = train.parse_args(
        ["--base_model", "someone/bert", "--model_revision", "0123abc", "--decoder_layers", "1", "--output_dir", "x"]
    )
    model, _ = train.load_model(model_args)
    assert calls == [("config", "0123abc"), ("weights", "0123abc"), ("tokenizer", "0123abc")]
    assert model.config.decoder.num_hidden_layers == 1
    with pytest.raises(ValueError, match="is a local folder: drop the revision"):
        build.build_multitask_model(str(tiny_bert_dir), revision="0123abc")


def test_model_card_names_no_local_path(tiny_bert_dir, tmp_path):
    data = tmp_path / "data"
    sources = {}
    for arg, folder, demo in [
        ("sentiment_train", "sst2", "sentiment_train"),
        ("sentiment_validation", "sst2", "sentiment_validation"),
        ("translation_train", "tatoeba_en_mr", "translation_train"),
        ("translation_validation", "tatoeba_en_mr", "translation_validation"),
        ("translation_test", "ntrex128_en_mr", "translation_validation"),
    ]:
        (data / folder).mkdir(parents=True, exist_ok=True)
        sources[arg] = str(shutil.copy(DEMO_DATA / f"{demo}.jsonl", data / folder / f"{arg}.jsonl"))
    base = shutil.copytree(tiny_bert_dir, tmp_path / "my-bert")
    out = tmp_path / "out"
    train.main(
        tiny_train_args(base, out, *NO_CHECKPOINTS, *[x for arg, path in sources.items() for x in (f"--{arg}", path)])
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    assert str(tmp_path) not in card and "tatoeba_en_mr/translation_train.jsonl" in card and "`my-bert`" in card
    assert not re.search(r"(^|[\s`'\"(])/[^\s/]", card, flags=re.MULTILINE), "an absolute path in the card"
    assert str(tmp_path) not in (out / "config.json").read_text(encoding="utf-8")  # uploaded with the card


def test_a_failed_card_write_keeps_the_old_card(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text("old card")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_bare_card(tmp_path)
    assert os.listdir(tmp_path) == ["README.md"] and (tmp_path / "README.md").read_text() == "old card"


@pytest.mark.parametrize("option", ["--generation_num_beams", "--generation_max_length"])
def test_senseless_generation_settings_are_refused_before_any_work(tiny_bert_dir, tmp_path, option):
    with pytest.raises(ValueError, match=f"{option[2:]} must be at least 1, got 0"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", option, "0"))
    assert not (tmp_path / "out").exists()


def test_moved_run_keeps_its_best_checkpoint(checkpointed_run, tiny_bert_dir, tmp_path):
    """A run folder moved to another place and resumed: the best checkpoint its state records (by the old path) is
    still the best, kept through rotation and loaded at the end, not forgotten."""
    out = tmp_path / "moved"
    best = Path(shutil.copytree(checkpointed_run / "checkpoint-3", out / "checkpoint-3"))
    resumed = Path(shutil.copytree(checkpointed_run / "checkpoint-6", out / "checkpoint-6"))
    state = json.loads((resumed / "trainer_state.json").read_text())
    # recorded where the run was: an evaluation at step 3 scored higher than any later one can
    state |= {"best_model_checkpoint": "/elsewhere/run/checkpoint-3", "best_metric": 1e9, "best_global_step": 3}
    (resumed / "trainer_state.json").write_text(json.dumps(state))
    args = ["--save_strategy", "steps", "--save_steps", "3", "--save_total_limit", "1", "--eval_strategy", "steps"]
    args += ["--eval_steps", "3"]
    train.main(tiny_train_args(tiny_bert_dir, out, *args, "--resume_from_checkpoint", str(resumed)))
    assert best.is_dir()  # rotation (one checkpoint kept) kept the best
    assert json.loads((out / "trainer_state.json").read_text())["best_model_checkpoint"] == str(best)
    final, chosen = load_file(out / "model.safetensors"), load_file(best / "model.safetensors")
    assert all(torch.equal(final[k], chosen[k]) for k in chosen)  # the end model is the best checkpoint's


@pytest.mark.parametrize(
    "option, part",
    [("--max_source_length", "encoder"), ("--max_target_length", "decoder"), ("--generation_max_length", "decoder")],
)
def test_a_length_beyond_the_position_embeddings_is_refused_before_any_work(tiny_bert_dir, tmp_path, option, part):
    """The tiny base has 128 positions: a longer setting would fail only at the first batch that long."""
    with pytest.raises(ValueError, match=f"{option} 129 is longer than the model's {part} takes \\(128 positions\\)"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", option, "129"))
    assert not (tmp_path / "out").exists()
    train.main(
        tiny_train_args(tiny_bert_dir, tmp_path / "ok", option, "128", "--max_steps", "1")
    )  # the limit itself runs


def test_continuing_a_folder_that_is_not_there_says_so(tmp_path, monkeypatch):
    """Stage two before stage one: the missing folder is named, not a Hub connection or repo-id error alone."""
    monkeypatch.chdir(tmp_path)
    missing = Path("outputs") / "cpu"  # as recipes/cpu_stage2.yaml names it: a Hub id too
    with pytest.raises(OSError, match=f"--model_name_or_path {missing} is not a folder here, .* needs that run first"):
        train.main(continue_train_args(missing, tmp_path / "out"))
    with pytest.raises(OSError, match=f"{tmp_path / missing}: no such folder"):
        train.main(continue_train_args(tmp_path / missing, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
