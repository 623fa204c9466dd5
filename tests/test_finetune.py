"""Further fine-tuning as users do it: a saved folder through one Auto class, a plain Trainer and a stock collator.
The other task's weights come back unchanged."""

import numpy as np
import torch
from conftest import ENGLISH, MARATHI
from datasets import Dataset
from safetensors.torch import load_file
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    GenerationConfig,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainingArguments,
)


def changed(before_dir, after_dir, prefix) -> list[str]:
    before, after = load_file(before_dir / "model.safetensors"), load_file(after_dir / "model.safetensors")
    assert before.keys() == after.keys()
    return [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]


def training_args(cls, out):
    return cls(
        output_dir=str(out),
        num_train_epochs=4,
        per_device_train_batch_size=3,
        learning_rate=3e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )


def mean_loss(model, collator, data) -> float:
    model.eval()
    with torch.no_grad():
        return model(**collator([data[i] for i in range(len(data))])).loss.item()


def test_sentiment_view_with_a_plain_trainer(saved, tmp_path):
    settings = GenerationConfig.from_pretrained(saved)
    settings.num_beams, settings.length_penalty, settings.no_repeat_ngram_size = 3, 1.5, 2  # a release's
    settings.save_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(saved, trust_remote_code=True)
    model = AutoModelForSequenceClassification.from_pretrained(saved, trust_remote_code=True)
    data = Dataset.from_dict({"text": ENGLISH, "label": [1, 0, 1]}).map(
        lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"]
    )
    collator = DataCollatorWithPadding(tokenizer)
    before = mean_loss(model, collator, data)
    trainer = Trainer(
        model=model,
        args=training_args(TrainingArguments, tmp_path / "cls"),
        train_dataset=data,
        data_collator=collator,
        processing_class=tokenizer,
    )
    trainer.train()
    assert mean_loss(model, collator, data) < before
    trainer.save_model(tmp_path / "cls")
    assert changed(saved, tmp_path / "cls", "classifier.") and changed(saved, tmp_path / "cls", "encoder.")
    assert not changed(saved, tmp_path / "cls", "decoder.") and not changed(saved, tmp_path / "cls", "lm_head.")
    translator = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "cls", trust_remote_code=True)  # a translator too
    assert translator.generation_config.to_diff_dict() == settings.to_diff_dict()  # with the release's settings


def test_translation_view_with_a_plain_seq2seq_trainer(saved, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(saved, trust_remote_code=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(saved, trust_remote_code=True)
    data = Dataset.from_dict({"en": ENGLISH, "mr": MARATHI}).map(
        lambda b: tokenizer(b["en"], text_target=b["mr"]), batched=True, remove_columns=["en", "mr"]
    )
    collator = DataCollatorForSeq2Seq(tokenizer, model=model)  # builds decoder_input_ids from the labels
    before = mean_loss(model, collator, data)
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args(Seq2SeqTrainingArguments, tmp_path / "mt"),
        train_dataset=data,
        data_collator=collator,
        processing_class=tokenizer,
    )
    trainer.train()
    assert mean_loss(model, collator, data) < before
    trainer.save_model(tmp_path / "mt")
    assert changed(saved, tmp_path / "mt", "decoder.") and changed(saved, tmp_path / "mt", "lm_head.")
    assert not changed(saved, tmp_path / "mt", "classifier.")
    AutoModelForSequenceClassification.from_pretrained(tmp_path / "mt", trust_remote_code=True)


def test_seq2seq_trainer_generates_from_the_source_not_the_reference(saved, tmp_path):
    # the stock collator's teacher-forcing inputs are one token shorter than the labels, which Seq2SeqTrainer keeps
    tokenizer = AutoTokenizer.from_pretrained(saved, trust_remote_code=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(saved, trust_remote_code=True).eval()
    data = Dataset.from_dict({"en": ENGLISH, "mr": MARATHI}).map(
        lambda b: tokenizer(b["en"], text_target=b["mr"]), batched=True, remove_columns=["en", "mr"]
    )
    args = Seq2SeqTrainingArguments(
        str(tmp_path), predict_with_generate=True, report_to="none", use_cpu=True, per_device_eval_batch_size=3
    )
    trainer = Seq2SeqTrainer(
        model=model, args=args, data_collator=DataCollatorForSeq2Seq(tokenizer, model=model), processing_class=tokenizer
    )
    predicted = trainer.predict(data, max_new_tokens=6, num_beams=1).predictions
    predicted = tokenizer.batch_decode(
        np.where(predicted < 0, tokenizer.pad_token_id, predicted), skip_special_tokens=True
    )
    with torch.no_grad():
        ids = model.generate(**tokenizer(ENGLISH, padding=True, return_tensors="pt"), max_new_tokens=6, num_beams=1)
    assert predicted == tokenizer.batch_decode(ids, skip_special_tokens=True)
