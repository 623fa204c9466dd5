"""Behaviour of the model on tiny random configs."""

import pytest
import torch
import torch.nn.functional as F
from conftest import ENGLISH, MARATHI, tiny_config

from modeling_multitask import (
    MultitaskBertForConditionalGeneration,
    MultitaskBertForSequenceClassification,
    MultitaskBertModel,
)


def batch(tokenizer):
    inputs = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    labels = tokenizer(text_target=MARATHI, padding=True, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    return inputs, labels


def test_shapes_and_finite_losses(tiny_model, tiny_tokenizer):
    inputs, labels = batch(tiny_tokenizer)
    vocab = len(tiny_tokenizer)
    out = tiny_model(**inputs, labels=labels)
    assert out.logits.shape == (3, labels.shape[1] - 1, vocab)
    assert out.sentiment_logits is None  # a translation training batch skips the sentiment head
    assert out.encoder_last_hidden_state.shape == (*inputs["input_ids"].shape, 32)
    assert torch.isfinite(out.loss) and out.loss > 0
    out = tiny_model(**inputs, labels=torch.tensor([1, 0, 1]))
    assert out.logits is None and out.sentiment_logits.shape == (3, 2) and torch.isfinite(out.loss)
    # teacher-forced inference without labels gives both heads
    decoder_input_ids = tiny_model.prepare_decoder_input_ids_from_labels(labels)
    out = tiny_model(**inputs, decoder_input_ids=decoder_input_ids)
    assert out.logits.shape == (3, labels.shape[1] - 1, vocab) and out.sentiment_logits.shape == (3, 2)


def test_translation_loss_ignores_masked_tokens(tiny_model, tiny_tokenizer):
    inputs, labels = batch(tiny_tokenizer)
    out = tiny_model(**inputs, labels=labels)
    scored = labels[:, 1:]  # after the start token
    keep = scored != -100
    expected = F.cross_entropy(out.logits[keep], scored[keep])
    torch.testing.assert_close(out.loss, expected)
    # what sits under -100 never counts: the loss over the first sentence alone equals its share
    one = tiny_model(**{k: v[:1] for k, v in inputs.items()}, labels=labels[:1])
    per_token = F.cross_entropy(out.logits[0][keep[0]], scored[0][keep[0]])
    torch.testing.assert_close(one.loss, per_token, atol=1e-5, rtol=1e-5)


def test_trainer_passes_no_item_count(tiny_model):
    # the loss is each batch's mean (test_translation_loss_ignores_masked_tokens): Trainer must not divide a sum by
    # its own count of target tokens, which would include every target's leading start token
    assert tiny_model.accepts_loss_kwargs is False


def test_sentiment_ignores_padding(tiny_model, tiny_tokenizer):
    alone = tiny_tokenizer(ENGLISH[:1], return_tensors="pt")
    padded = tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")
    torch.testing.assert_close(
        tiny_model(**alone).sentiment_logits[0], tiny_model(**padded).sentiment_logits[0], atol=1e-5, rtol=1e-5
    )


def test_cls_pooling_reads_the_first_token(tiny_tokenizer):
    torch.manual_seed(0)
    model = MultitaskBertModel(tiny_config(len(tiny_tokenizer), classifier_pooling="cls")).eval()
    inputs = tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")
    out = model(**inputs)
    torch.testing.assert_close(out.sentiment_logits, model.classifier.out_proj(out.encoder_last_hidden_state[:, 0]))


def test_word_embeddings_are_shared(tiny_model):
    shared = tiny_model.encoder.embeddings.word_embeddings.weight
    assert tiny_model.decoder.embeddings.word_embeddings.weight is shared
    assert tiny_model.lm_head.predictions.decoder.weight is shared


def test_uses_sdpa(tiny_model):
    assert tiny_model.encoder.config._attn_implementation == "sdpa"
    assert tiny_model.decoder.config._attn_implementation == "sdpa"


def test_greedy_generation_with_and_without_cache_agree(tiny_model, tiny_tokenizer):
    inputs = tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")
    kwargs = dict(num_beams=1, do_sample=False, max_new_tokens=12, min_new_tokens=12)
    cached = tiny_model.generate(**inputs, use_cache=True, **kwargs)
    uncached = tiny_model.generate(**inputs, use_cache=False, **kwargs)
    assert cached.shape == (3, 13)
    assert torch.equal(cached, uncached)
    assert (cached[:, 0] == tiny_model.config.decoder_start_token_id).all()
    # the start token and padding are never generated after the start
    assert not torch.isin(cached[:, 1:], torch.tensor([tiny_model.config.bos_token_id, 1])).any()


def test_beam_search_equals_greedy_with_one_beam_and_returns_best_first(tiny_model, tiny_tokenizer):
    inputs = tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")
    out = tiny_model.generate(
        **inputs,
        num_beams=4,
        num_return_sequences=2,
        max_new_tokens=8,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert out.sequences.shape[0] == 6
    scores = out.sequences_scores.view(3, 2)
    assert (scores[:, 0] >= scores[:, 1]).all()


def test_cached_step_matches_full_forward(tiny_model, tiny_tokenizer):
    inputs, labels = batch(tiny_tokenizer)
    decoder_input_ids = tiny_model.prepare_decoder_input_ids_from_labels(labels)
    full = tiny_model(**inputs, decoder_input_ids=decoder_input_ids).logits
    prefix = tiny_model(**inputs, decoder_input_ids=decoder_input_ids[:, :-1], use_cache=True)
    step = tiny_model(
        attention_mask=inputs["attention_mask"],
        encoder_outputs=(prefix.encoder_last_hidden_state,),
        decoder_input_ids=decoder_input_ids[:, -1:],
        cache=prefix.cache,
        use_cache=True,
    )
    assert step.sentiment_logits is None  # the encoder did not run
    torch.testing.assert_close(step.logits[:, 0], full[:, -1], atol=1e-5, rtol=1e-5)


def test_bad_inputs_raise_clear_errors(tiny_model, tiny_tokenizer):
    inputs = tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="empty batch"):
        tiny_model(input_ids=torch.zeros((0, 5), dtype=torch.long))
    with pytest.raises(ValueError, match="at most 64"):
        tiny_model(input_ids=torch.full((1, 65), 5))
    with pytest.raises(ValueError, match="tokenizer does not match"):
        tiny_model(input_ids=torch.tensor([[0, len(tiny_tokenizer), 2]]))
    with pytest.raises(ValueError, match="translation labels must have shape"):
        MultitaskBertForConditionalGeneration(tiny_model.config)(**inputs, labels=torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="sentiment labels must have shape"):
        MultitaskBertForSequenceClassification(tiny_model.config)(**inputs, labels=torch.ones((3, 4), dtype=torch.long))


def test_generation_longer_than_the_decoders_positions_is_refused_before_it_starts(tiny_model, tiny_tokenizer):
    batch = tiny_tokenizer(ENGLISH[:1], return_tensors="pt")
    positions = tiny_model.config.decoder.max_position_embeddings
    with pytest.raises(ValueError, match=f"max_new_tokens {positions + 1} is more than the decoder's {positions}"):
        tiny_model.generate(**batch, max_new_tokens=positions + 1, num_beams=1)
    # the longest allowed: the start token and every token but the last fill the positions exactly
    longest = tiny_model.generate(**batch, max_new_tokens=positions, min_new_tokens=positions, num_beams=1)
    assert longest.shape[1] == positions + 1


def test_training_loss_projects_only_labelled_positions(tiny_tokenizer):
    torch.manual_seed(0)
    config = tiny_config(len(tiny_tokenizer))
    for sub in (config.encoder, config.decoder):
        sub.hidden_dropout_prob = sub.attention_probs_dropout_prob = 0.0
    model = MultitaskBertModel(config)
    inputs, labels = batch(tiny_tokenizer)
    model.train()
    train_out = model(**inputs, labels=labels)
    model.eval()
    eval_out = model(**inputs, labels=labels)
    assert train_out.logits is None and eval_out.logits is not None
    torch.testing.assert_close(train_out.loss, eval_out.loss)


def test_the_leading_start_token_of_targets_is_the_decoder_start(tiny_model, tiny_tokenizer):
    inputs, labels = batch(tiny_tokenizer)
    assert (labels[:, 0] == tiny_model.config.decoder_start_token_id).all()  # what tokenizer(text_target=...) gives
    decoder_input_ids = tiny_model.prepare_decoder_input_ids_from_labels(labels)
    assert decoder_input_ids.shape[1] == labels.shape[1] - 1
    assert decoder_input_ids[0, :3].tolist() == labels[0, :3].tolist()  # `<s> text` in, `text </s>` scored
    out = tiny_model(**inputs, labels=labels)
    scored = labels[:, 1:]
    keep = scored != -100
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[keep], scored[keep]))
    # labels without the start token are scored whole
    same = tiny_model(**inputs, labels=scored, decoder_input_ids=decoder_input_ids)
    torch.testing.assert_close(same.loss, out.loss)
    with pytest.raises(ValueError, match="do not match decoder_input_ids"):
        tiny_model(**inputs, labels=labels, decoder_input_ids=decoder_input_ids[:, :-1])
    with pytest.raises(ValueError, match="beginning with the decoder start token"):  # `<s>` would be a target
        tiny_model(
            **inputs, labels=labels, decoder_input_ids=torch.cat([decoder_input_ids[:, :1], decoder_input_ids], 1)
        )
