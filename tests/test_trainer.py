"""The multi-task Trainer's own parts, each on a few steps of a tiny model: per-task loss weights, per-task losses in
the training log, and the combined score that chooses the best checkpoint."""

import logging
import math

import pytest
import torch
from conftest import tiny_trainer, write_bare_card

from multitask_bert.card import results_table, training_procedure
from multitask_bert.evaluation import SetResult, combined_score
from multitask_bert.trainer import MultitaskTrainer, MultitaskTrainingArguments


def train_steps(base, output_dir, **overrides) -> tuple[dict[str, torch.Tensor], MultitaskTrainer]:
    """One epoch of 4 one-task batches (8 + 8 demo examples, batches of 4, so both tasks come up), logged every 2
    steps: the weights before training and the trained Trainer."""
    torch.manual_seed(0)
    trainer = tiny_trainer(
        base,
        8,
        output_dir=str(output_dir),
        num_train_epochs=1,
        logging_steps=2,
        learning_rate=1e-2,
        # no decoupled weight decay: it shrinks every weight that gets a gradient, even a zero one, whatever the loss
        weight_decay=0.0,
        **overrides,
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    return before, trainer


def changed(before: dict[str, torch.Tensor], model, prefix: str) -> list[str]:
    after = model.state_dict()
    return [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]


def test_zero_sentiment_loss_weight_leaves_the_classifier_unchanged(tiny_bert_dir, tmp_path):
    before, trainer = train_steps(tiny_bert_dir, tmp_path / "zero", sentiment_loss_weight=0.0)
    assert changed(before, trainer.model, "classifier.") == []
    assert changed(before, trainer.model, "decoder.")  # translation still trained
    logged = [h["loss_sentiment"] for h in trainer.state.log_history if "loss_sentiment" in h]
    assert logged and all(loss > 0 for loss in logged)  # the log shows the task's own loss, not the weighted one

    before, trainer = train_steps(tiny_bert_dir, tmp_path / "one")  # the default weight, 1: the same steps move it
    assert changed(before, trainer.model, "classifier.")


def test_zero_loss_weight_with_weight_decay_warns_that_the_head_still_shrinks(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="multitask_bert.trainer"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), sentiment_loss_weight=0.0, weight_decay=0.01)
    assert "--sentiment_loss_weight 0 with --weight_decay 0.01" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="multitask_bert.trainer"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), sentiment_loss_weight=0.0, weight_decay=0.0)
        MultitaskTrainingArguments(output_dir=str(tmp_path), weight_decay=0.01)
    assert "loss_weight" not in caplog.text


def test_training_log_has_each_tasks_loss(tiny_bert_dir, tmp_path):
    _, trainer = train_steps(tiny_bert_dir, tmp_path / "run")
    logs = [h for h in trainer.state.log_history if "loss" in h]  # the training logs (the last entry sums up)
    assert len(logs) == 2
    for task in ("sentiment", "translation"):
        values = [h[f"loss_{task}"] for h in logs if f"loss_{task}" in h]
        assert values, f"no loss_{task} in {logs}"
        assert all(math.isfinite(v) and v > 0 for v in values)


def test_label_smoothing_factor_smooths_the_translation_loss(tiny_bert_dir, tmp_path):
    """Trainer's own smoother would need `outputs.logits` of a sentiment batch; the model smooths instead."""
    _, trainer = train_steps(tiny_bert_dir, tmp_path / "smoothed", label_smoothing_factor=0.1)
    logged = {key for h in trainer.state.log_history for key in h}
    assert {"loss_sentiment", "loss_translation"} <= logged  # both tasks trained
    model = trainer.model.eval()
    assert model.config.label_smoothing == 0.1
    batch = trainer.processing_class(["Where is the station?"], text_target=["स्टेशन कुठे आहे?"], return_tensors="pt")
    with torch.no_grad():
        outputs = model(**batch)
        targets = batch["labels"][:, 1:]  # the decoder is fed `<s> text` and scored on `text </s>`
        expected = torch.nn.functional.cross_entropy(outputs.logits[0], targets[0], label_smoothing=0.1)
        model.config.label_smoothing = 0.0
        plain = model(**batch).loss
    assert outputs.loss == pytest.approx(expected.item(), rel=1e-4) and outputs.loss > plain

    # a run over that model asking for no smoothing (the default) gets none: the saved factor does not carry over
    model.config.label_smoothing = 0.1
    args = MultitaskTrainingArguments(output_dir=str(tmp_path / "again"), eval_strategy="no")
    unsmoothed = MultitaskTrainer(model=model, args=args)
    assert unsmoothed.model.config.label_smoothing == 0.0
    card = training_procedure(trainer.args, {"sentiment": 0.5, "translation": 0.5}, lora_r=None)
    assert "translation loss smoothed by 0.1 (`config.label_smoothing`)" in card


def test_fresh_learning_rate_gives_the_fresh_parts_their_own_rate_on_the_same_schedule(tiny_bert_dir, tmp_path):
    trainer = tiny_trainer(
        tiny_bert_dir, 8, output_dir=str(tmp_path), max_steps=10, learning_rate=1e-4, fresh_learning_rate=1e-3
    )
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    names = {id(p): name for name, p in trainer.model.named_parameters()}
    by_rate = {}
    for group in trainer.optimizer.param_groups:
        by_rate.setdefault(group["initial_lr"], set()).update(names[id(p)] for p in group["params"])
    fresh, pretrained = by_rate[1e-3], by_rate[1e-4]
    assert fresh.isdisjoint(pretrained) and fresh | pretrained == set(names.values())  # every weight, once
    assert any(".crossattention." in n for n in fresh) and any(n.startswith("classifier.") for n in fresh)
    assert any(n.startswith("lm_head.predictions.transform.") for n in fresh)
    # what the warm start copied (decoder self-attention, the shared word embeddings) keeps the base rate
    assert not any(n.startswith("encoder.") or ".attention.self." in n for n in fresh)
    assert "encoder.embeddings.word_embeddings.weight" in pretrained
    for _ in range(5):  # warm-up and decay scale both rates alike
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        rates = {g["initial_lr"]: g["lr"] for g in trainer.optimizer.param_groups}
        assert rates[1e-3] == pytest.approx(10 * rates[1e-4])
    assert "(0.001 for the parts the warm start left fresh)" in training_procedure(trainer.args, {}, lora_r=None)

    with pytest.raises(ValueError, match="fresh_learning_rate must be positive, got 0"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), fresh_learning_rate=0)


def test_decoder_learning_rate_gives_the_decoders_pretrained_layers_their_own_rate(tiny_bert_dir, tmp_path):
    trainer = tiny_trainer(
        tiny_bert_dir,
        8,
        output_dir=str(tmp_path),
        max_steps=10,
        learning_rate=1e-4,
        decoder_learning_rate=2e-4,
        fresh_learning_rate=1e-3,
    )
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    names = {id(p): name for name, p in trainer.model.named_parameters()}
    by_rate = {}
    for group in trainer.optimizer.param_groups:
        by_rate.setdefault(group["initial_lr"], set()).update(names[id(p)] for p in group["params"])
    assert set(by_rate) == {1e-4, 2e-4, 1e-3}
    encoder, decoder, fresh = by_rate[1e-4], by_rate[2e-4], by_rate[1e-3]
    assert len(encoder) + len(decoder) + len(fresh) == len(names)  # every weight, once
    assert decoder and all(n.startswith("decoder.") for n in decoder)
    assert any(".attention.self." in n for n in decoder) and any(".intermediate." in n for n in decoder)
    # the decoder's fresh cross-attention keeps the fresh rate; the tied word embeddings stay with the encoder
    assert not any(".crossattention." in n for n in decoder) and any(".crossattention." in n for n in fresh)
    assert "encoder.embeddings.word_embeddings.weight" in encoder
    assert all(not n.startswith("decoder.") for n in encoder) and any(n.startswith("classifier.") for n in fresh)
    for _ in range(5):  # one schedule scales the three rates alike
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        rates = {g["initial_lr"]: g["lr"] for g in trainer.optimizer.param_groups}
        assert rates[2e-4] == pytest.approx(2 * rates[1e-4]) and rates[1e-3] == pytest.approx(10 * rates[1e-4])
    assert "(0.0002 for the decoder's pretrained layers, 0.001 for the parts the warm start left fresh)" in (
        training_procedure(trainer.args, {}, lora_r=None)
    )

    with pytest.raises(ValueError, match="decoder_learning_rate must be positive, got -1"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), decoder_learning_rate=-1)


def test_bf16_on_a_machine_without_a_gpu_means_autocast_on_the_cpu(tmp_path, monkeypatch):
    import multitask_bert.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "only_cpu", lambda: True)
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), bf16=True)
    assert args.bf16 and args.use_cpu and args.device.type == "cpu"
    assert not MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True).bf16  # off on CPU unless asked


def test_bf16_on_a_cpu_without_native_bfloat16_warns_that_it_is_slow(tmp_path, monkeypatch, caplog):
    import multitask_bert.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "only_cpu", lambda: True)
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="multitask_bert.trainer"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), bf16=True)
    assert "pass --bf16 false on this machine" in caplog.text
    caplog.clear()
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)
    with caplog.at_level(logging.WARNING, logger="multitask_bert.trainer"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), bf16=True)
        MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    assert "native bfloat16" not in caplog.text


def result(name: str, task: str, scores: dict[str, float]) -> SetResult:
    return SetResult(name, task, "validation", name, rows=10, scores=scores, signatures={})


def test_combined_score_is_the_mean_over_tasks_of_each_primary_metric_on_0_to_100():
    results = [
        result("sst2", "sentiment", {"accuracy": 0.8, "f1": 0.1}),
        result("reviews", "sentiment", {"accuracy": 0.6, "f1": 0.2}),
        result("tatoeba", "translation", {"bleu": 5.0, "chrf": 50.0, "chrfpp": 30.0}),
        result("flores", "translation", {"bleu": 1.0, "chrf": 60.0, "chrfpp": 40.0}),
    ]
    # sentiment: 100 x mean(0.8, 0.6) = 70; translation: mean chrF++ (30, 40) = 35; combined: (70 + 35) / 2
    assert combined_score(results) == pytest.approx(52.5)
    # each task counts once, however many sets it has; its other metrics do not enter
    assert combined_score(results[:1] + results[2:]) == pytest.approx((80 + 35) / 2)
    assert combined_score(results[:2]) == pytest.approx(70.0)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [({"max_steps": 8000}, "8,000 steps"), ({"num_train_epochs": 3}, "3 epochs"), ({"num_train_epochs": 1}, "1 epoch")],
)
def test_card_names_the_run_length_that_trainer_used(tmp_path, limit, expected):
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), **limit)
    text = training_procedure(args, {"sentiment": 0.4, "translation": 0.6}, lora_r=None)
    assert f"{expected}, batch" in text
    best = training_procedure(args, {"sentiment": 0.4, "translation": 0.6}, lora_r=None, best_step=1700)
    assert f"{expected} (the weights of its best checkpoint: step 1,700), batch" in best


def test_card_names_the_examples_of_a_step(tmp_path):
    """Per device alone hides what a step sees with accumulation (or several processes: the same product)."""
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4)
    assert ", batch 4 per device, " in training_procedure(args, {}, lora_r=None)
    args = MultitaskTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=3
    )
    assert ", batch 4 per device × 3 accumulated = 12 per step, " in training_procedure(args, {}, lora_r=None)
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), seed=1, data_seed=7)  # the batches' order: seed 7
    assert "seed 1 (data seed 7);" in training_procedure(args, {}, lora_r=None)


def test_card_results_table_says_how_many_rows_each_figure_counts():
    table = results_table(
        [result("sst2", "sentiment", {"accuracy": 0.9}), result("news", "translation", {"chrfpp": 20})]
    )
    assert table[2:] == ["| sst2 | validation | 10 | Accuracy | 0.9 |", "| news | validation | 10 | chrF++ | 20 |"]


@pytest.mark.parametrize(
    ("strategies", "expected"),
    [
        ({}, True),  # evaluated and saved each epoch
        ({"eval_strategy": "steps", "save_strategy": "steps"}, True),
        ({"eval_strategy": "steps", "save_strategy": "best"}, True),
        ({"eval_strategy": "no"}, False),  # nothing to choose by
        ({"eval_strategy": "steps"}, False),  # evaluated at steps, saved at epochs: no checkpoint per evaluation
        ({"eval_strategy": "epoch", "save_strategy": "no"}, False),
    ],
)
def test_the_best_checkpoint_is_loaded_by_default_wherever_the_run_can(tmp_path, strategies, expected):
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), **strategies)
    assert args.load_best_model_at_end is expected


def test_a_lower_is_better_metric_chooses_the_lowest(tmp_path):
    # Trainer takes any name not ending in "loss" for higher-is-better: the checkpoint that loops most would win
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), metric_for_best_model="tatoeba_loops")
    assert args.greater_is_better is False
    assert MultitaskTrainingArguments(output_dir=str(tmp_path)).greater_is_better is True  # combined


def test_dataloader_options_are_used_or_refused(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="--dataloader_drop_last: every batch holds one task"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), dataloader_drop_last=True)
    trainer = tiny_trainer(
        tiny_bert_dir,
        8,
        output_dir=str(tmp_path),
        dataloader_num_workers=1,
        dataloader_prefetch_factor=3,
        dataloader_persistent_workers=True,
    )
    loader = trainer.get_train_dataloader()
    loader = getattr(loader, "base_dataloader", loader)  # under Accelerate's wrapper
    assert (loader.prefetch_factor, loader.persistent_workers) == (3, True)


def test_asking_for_the_best_checkpoint_where_none_is_kept_is_refused(tmp_path):
    with pytest.raises(ValueError, match="load_best_model_at_end requires the save and eval strategy to match"):
        MultitaskTrainingArguments(output_dir=str(tmp_path), eval_strategy="no", load_best_model_at_end=True)


def test_card_speaks_of_test_sets_only_when_some_were_scored(tmp_path):
    def results_paragraph(results) -> str:
        return write_bare_card(tmp_path, results=results).split("## Results\n", 1)[1].split("\n\n")[0]

    validation = SetResult("tatoeba", "translation", "validation", "t.jsonl", 4, {"chrfpp": 60.0}, {})
    test = SetResult("ntrex", "translation", "test", "n.jsonl", 4, {"chrfpp": 20.0}, {})
    assert "test sets" not in results_paragraph([validation])
    assert "on the test sets\n(scored once, at the end)" in results_paragraph([validation, test])
