"""Vocabulary trimming keeps what the data uses and every character, and changes nothing else."""

import pytest
import torch
from conftest import ENGLISH, MARATHI
from transformers import AutoModel, AutoTokenizer, BertTokenizerFast

from multitask_bert.build import save_model
from multitask_bert.trim_vocab import pieces_per_sentence, trim_vocabulary


def test_trimmed_model_computes_the_same_on_kept_pieces(tiny_model, tiny_tokenizer, tmp_path):
    used = {i for text in ENGLISH[:2] + MARATHI[:2] for i in tiny_tokenizer(text)["input_ids"]}
    model, tokenizer, report = trim_vocabulary(tiny_model, tiny_tokenizer, used)
    assert report.pieces_before == len(tiny_tokenizer) and report.pieces_after == len(tokenizer) < len(tiny_tokenizer)
    assert model.config.encoder.vocab_size == len(tokenizer)
    for text in ENGLISH[:2] + MARATHI[:2]:  # the data's own text: the same pieces
        assert tokenizer.tokenize(text) == tiny_tokenizer.tokenize(text)
    unseen = ENGLISH[2] + " " + MARATHI[2]  # other text still tokenizes, from single characters, and round-trips
    ids = tokenizer(unseen)["input_ids"]
    assert tokenizer.unk_token_id not in ids and tokenizer.decode(ids, skip_special_tokens=True) == unseen
    assert pieces_per_sentence(tokenizer, [unseen]) >= pieces_per_sentence(tiny_tokenizer, [unseen])

    keep = tiny_tokenizer.convert_tokens_to_ids(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
    old_inputs = tiny_tokenizer(ENGLISH[:2], padding=True, return_tensors="pt")
    new_inputs = tokenizer(ENGLISH[:2], padding=True, return_tensors="pt")
    labels = tiny_tokenizer(text_target=MARATHI[:2], padding=True, return_tensors="pt")["input_ids"]
    new_labels = tokenizer(text_target=MARATHI[:2], padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        old = tiny_model(**old_inputs, decoder_input_ids=tiny_model.prepare_decoder_input_ids_from_labels(labels))
        new = model.eval()(**new_inputs, decoder_input_ids=model.prepare_decoder_input_ids_from_labels(new_labels))
    torch.testing.assert_close(new.sentiment_logits, old.sentiment_logits)
    torch.testing.assert_close(new.logits, old.logits[..., keep])

    save_model(model, tokenizer, tmp_path)  # an ordinary model folder
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True).eval()
    assert len(AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=True)) == len(tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**new_inputs).sentiment_logits, new.sentiment_logits)


def test_only_unigram_tokenizers(tiny_model, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]))
    with pytest.raises(ValueError, match="needs a SentencePiece unigram tokenizer"):
        trim_vocabulary(tiny_model, BertTokenizerFast(vocab_file=str(vocab)), [0, 1])
