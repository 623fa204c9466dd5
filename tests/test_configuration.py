import pytest
from conftest import tiny_config

from configuration_multitask import MultitaskBertConfig


def test_defaults_and_round_trip(tmp_path):
    config = tiny_config(100)
    assert config.id2label == {0: "negative", 1: "positive"}
    assert config.label2id == {"negative": 0, "positive": 1}
    assert config.decoder.is_decoder and config.decoder.add_cross_attention
    assert not config.encoder.is_decoder
    config.save_pretrained(tmp_path)
    loaded = MultitaskBertConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.auto_map["AutoModelForSeq2SeqLM"] == "modeling_multitask.MultitaskBertForConditionalGeneration"


def test_other_label_sets():
    config = tiny_config(100, id2label={0: "neg", 1: "neu", 2: "pos"})
    assert config.num_labels == 3 and config.label2id == {"neg": 0, "neu": 1, "pos": 2}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"label2id": {"bad": 0, "good": 1}}, "label2id"),
        ({"id2label": {0: "negative", 2: "positive"}}, "id2label keys"),
        ({"id2label": {0: "same", 1: "same"}}, "same label"),
        ({"decoder_start_token_id": None}, "decoder_start_token_id is missing"),
        ({"eos_token_id": 500}, "eos_token_id=500"),
        ({"classifier_pooling": "max"}, "classifier_pooling"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
    ],
)
def test_bad_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(100, **overrides)


def test_decoder_must_share_the_embeddings():
    bert = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    with pytest.raises(ValueError, match="decoder.hidden_size"):
        MultitaskBertConfig(encoder=bert, decoder={**bert, "hidden_size": 64})
    with pytest.raises(ValueError, match="decoder.vocab_size"):
        MultitaskBertConfig(encoder=bert, decoder={**bert, "vocab_size": 99})
    with pytest.raises(ValueError, match="num_attention_heads"):
        MultitaskBertConfig(encoder={**bert, "num_attention_heads": 5}, decoder=bert)


def test_check_tokenizer_wants_exactly_the_models_vocabulary(tiny_tokenizer):
    size = len(tiny_tokenizer)
    tiny_config(size).check_tokenizer(tiny_tokenizer)
    cause = "the folder's tokenizer files are missing or belong to another model"
    smaller = f"the tokenizer has {size} tokens but the model has a vocabulary of {size + 7}: {cause}"
    with pytest.raises(ValueError, match=smaller):  # a stub, or another model's tokenizer: not only a larger one fails
        tiny_config(size + 7).check_tokenizer(tiny_tokenizer)
    with pytest.raises(ValueError, match=f"the tokenizer's pad_token_id is 1 but the model's config says 3: {cause}"):
        tiny_config(size, pad_token_id=3).check_tokenizer(tiny_tokenizer)
    with pytest.raises(ValueError, match=f"the tokenizer's eos_token_id is 2 but the model's config says 4: {cause}"):
        tiny_config(size, eos_token_id=4).check_tokenizer(tiny_tokenizer)
    with pytest.raises(ValueError, match=f"no tokenizer could be loaded for the model: {cause}"):
        tiny_config(size).check_tokenizer(None)
