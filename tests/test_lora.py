"""LoRA per task: only adapters and heads train, the batch's task picks the adapter, the result serves both tasks."""

import ast
import json
import re
import shutil

import pytest
import torch
from conftest import ENGLISH, resume_train_args, tiny_train_args
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import train
from multitask_bert.build import build_multitask_model
from multitask_bert.data import DataArguments, load_task_data
from multitask_bert.lora import add_task_adapters, load_task_adapters
from multitask_bert.run_layout import RunLayout
from multitask_bert.sampling import MultitaskDataset
from multitask_bert.trainer import MultitaskCollator, MultitaskTrainer, MultitaskTrainingArguments


def test_only_adapters_and_heads_change_and_each_batch_uses_its_task_adapter(tiny_bert_dir, tmp_path):
    torch.manual_seed(0)
    model, tokenizer = build_multitask_model(str(tiny_bert_dir), decoder_layers=1)
    train_sets = load_task_data(DataArguments(max_train_samples=12), tokenizer, model.config.label2id).train
    collator = MultitaskCollator(tokenizer, model)
    peft_model = add_task_adapters(model, r=4)
    before = {k: v.clone() for k, v in peft_model.state_dict().items()}

    seen = []  # (module that ran, adapter active then)
    base = peft_model.get_base_model()
    for name in ("classifier", "decoder"):
        getattr(base, name).register_forward_pre_hook(
            lambda module, args, name=name: seen.append((name, peft_model.active_adapter))
        )
    args = MultitaskTrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        use_cpu=True,
        disable_tqdm=True,
    )
    MultitaskTrainer(
        model=peft_model,
        args=args,
        train_dataset=MultitaskDataset(train_sets),
        data_collator=collator,
        processing_class=tokenizer,
    ).train()

    assert {adapter for module, adapter in seen if module == "classifier"} == {"sentiment"}
    assert {adapter for module, adapter in seen if module == "decoder"} == {"translation"}
    after = peft_model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "nothing trained"
    assert all(".lora_" in k or ".modules_to_save." in k for k in changed), sorted(changed)[:5]
    trained = " ".join(sorted(changed))
    for needle in (
        "lora_B.sentiment",
        "lora_B.translation",
        "classifier.modules_to_save.sentiment",
        "crossattention.modules_to_save.translation",
    ):
        assert needle in trained
    assert not any(k.startswith("base_model.model.decoder.") and ".sentiment" in k for k in changed)


@pytest.fixture(scope="module")
def lora_run(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "model"
    train.main(
        tiny_train_args(
            tiny_bert_dir,
            out,
            *("--lora", "--lora_r", "4", "--merge_adapter", "translation", "--learning_rate", "1e-2"),
            *("--label_smoothing_factor", "0.1"),
        )
    )
    return out


def test_saved_adapters_serve_both_tasks_and_merge_for_export(lora_run):
    assert RunLayout(lora_run).adapters() == ["sentiment", "translation"] and RunLayout(lora_run).holds_model()
    for folder in (lora_run, RunLayout(lora_run).merged("translation")):  # the base was saved before the trainer
        assert json.loads((folder / "config.json").read_text())["label_smoothing"] == 0.1, folder
    # the folder (base and adapters) serves both tasks, the merged export its own alone (the other head is the base's)
    assert json.loads((lora_run / "config.json").read_text())["trained_tasks"] is None
    merged = json.loads((RunLayout(lora_run).merged("translation") / "config.json").read_text())
    assert merged["trained_tasks"] == ["translation"]
    model = load_task_adapters(str(lora_run))
    tokenizer = AutoTokenizer.from_pretrained(lora_run, trust_remote_code=True)
    batch = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    with torch.no_grad():
        model.set_adapter("sentiment")
        sentiment = model(**batch).sentiment_logits
        with model.disable_adapter():
            untrained = model(**batch).sentiment_logits
        model.set_adapter("translation")
        translated = model.generate(**batch, num_beams=2, max_new_tokens=5)
    assert not torch.allclose(sentiment, untrained)  # the trained sentiment head and adapter are in use
    assert model.active_adapter == "translation"

    merged = AutoModelForSeq2SeqLM.from_pretrained(RunLayout(lora_run).merged("translation"), trust_remote_code=True)
    merged.eval()
    assert not hasattr(merged, "peft_config")
    assert torch.equal(merged.generate(**batch, num_beams=2, max_new_tokens=5), translated)


def test_lora_runs_card_loads_the_adapters_not_the_bare_base(lora_run, capsys):
    card = (lora_run / "README.md").read_text()
    how_to = card[card.index("## How to use") : card.index("## Training data")]
    assert "pipeline(model=repo" not in how_to  # the plain model's examples would serve the untrained base
    assert "peft" in (lora_run / "requirements.txt").read_text()
    code = how_to.split("```python\n")[1].split("```")[0]
    exec(re.sub(r'repo = ".*"', f"repo = {str(lora_run)!r}", code), {})  # the card's code, run on the folder
    probabilities, translations = [ast.literal_eval(line) for line in capsys.readouterr().out.splitlines()[-2:]]

    model = load_task_adapters(str(lora_run))
    tokenizer = AutoTokenizer.from_pretrained(lora_run, trust_remote_code=True)
    batch = tokenizer(["The film was wonderful.", "Where is the station?"], padding=True, return_tensors="pt")
    with torch.no_grad():
        model.set_adapter("sentiment")
        expected = model(**batch).sentiment_logits.softmax(-1)
        with model.disable_adapter():
            bare = model(**batch).sentiment_logits.softmax(-1)
        model.set_adapter("translation")
        ids = model.generate(**batch, num_beams=4, max_new_tokens=64)
    torch.testing.assert_close(torch.tensor(probabilities), expected)
    assert not torch.allclose(expected, bare)  # what the card prints is the adapters' answer, not the base's
    assert translations == tokenizer.batch_decode(ids, skip_special_tokens=True)


def test_lora_run_resumes_to_the_same_adapters(tiny_bert_dir, tmp_path):
    lora = ["--lora", "--lora_r", "4"]
    base = shutil.copytree(tiny_bert_dir, tmp_path / "base")  # a Hub base, which may change between kill and resume
    train.main(resume_train_args(base, tmp_path / "straight", *lora))
    checkpoint = tmp_path / "straight" / "checkpoint-9"  # inside the second epoch
    train.main(resume_train_args(base, tmp_path / "resumed", *lora, "--resume_from_checkpoint", str(checkpoint)))
    for task in ("sentiment", "translation"):
        a = load_file(RunLayout(tmp_path / "straight").adapter_weights(task))
        b = load_file(RunLayout(tmp_path / "resumed").adapter_weights(task))
        start = load_file(RunLayout(checkpoint).adapter_weights(task))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=1e-5, msg=key)
        assert any(not torch.equal(start[k], b[k]) for k in start)  # it trained on after the checkpoint
    # the base changed since (the same options): refused before any training, naming what differs
    weights = load_file(base / "model.safetensors")
    save_file({name: tensor + 0.01 for name, tensor in weights.items()}, base / "model.safetensors")
    with pytest.raises(ValueError, match=r"holds LoRA adapters trained on the base saved in .*straight, and this run"):
        train.main(resume_train_args(base, tmp_path / "other", *lora, "--resume_from_checkpoint", str(checkpoint)))
    assert not (tmp_path / "other").exists()
