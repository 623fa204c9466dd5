"""`torch.compile` (train.py's `--torch_compile`): the training step traces without data-dependent breaks, and a
compiled run trains, evaluates and saves a model that loads whole."""

import math

import torch
import torch._dynamo
from conftest import tiny_train_args
from safetensors import safe_open
from transformers import AutoModel

import train


def test_training_step_traces_in_one_graph_but_for_the_labelled_positions(tiny_model, tiny_tokenizer):
    model = tiny_model.train()
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(4, len(tiny_tokenizer) - 1, (4, 9), generator=generator)
    labels = torch.randint(4, len(tiny_tokenizer) - 1, (4, 6), generator=generator)
    labels[:, 0], labels[2, 4:] = model.config.decoder_start_token_id, -100  # `<s> text </s>`, padded as collated
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    sentiment = torch._dynamo.explain(model)(**inputs, labels=torch.tensor([0, 1, 1, 0]))
    assert sentiment.graph_break_count == 0, [r.reason for r in sentiment.break_reasons]
    collated = {"labels": labels, "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(labels)}
    translation = torch._dynamo.explain(model)(**inputs, **collated)
    # the one split: which positions carry a label (their number depends on the data) before the vocabulary projection
    assert translation.break_reasons
    for reason in translation.break_reasons:
        assert "nonzero" in reason.reason and reason.user_stack[-1].name == "_translation_loss", reason.reason


def test_compiled_training_run(tiny_bert_dir, tmp_path):
    out = tmp_path / "model"
    metrics = train.main(tiny_train_args(tiny_bert_dir, out, "--torch_compile", "true"))
    assert math.isfinite(metrics["eval_translation_validation_loss"])  # evaluated, not NaN
    assert 0 <= metrics["eval_sentiment_validation_accuracy"] <= 1
    with safe_open(out / "model.safetensors", "pt") as weights:
        assert not [k for k in weights.keys() if "_orig_mod" in k]  # saved unwrapped, as an eager model
    model, info = AutoModel.from_pretrained(out, trust_remote_code=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
