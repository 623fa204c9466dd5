"""tables.py: one reader for .csv, .tsv, .json and .jsonl files; a bad row is kept as an error on its own line."""

import json

import pytest

from multitask_bert.tables import Row, read_table


def write(tmp_path, name: str, data: bytes | str):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_csv_quoting_bom_and_line_numbers(tmp_path):
    path = write(tmp_path, "in.csv", b'\xef\xbb\xbftext,label\r\n"hello, ""you""",1\r\n"two\r\nlines",0\r\nplain,1\r\n')
    table = read_table(path)
    assert table.columns == ["text", "label"]  # the byte-order mark is not part of the first name
    assert table.rows == [
        Row(2, {"text": 'hello, "you"', "label": "1"}),
        Row(3, {"text": "two\r\nlines", "label": "0"}),
        Row(5, {"text": "plain", "label": "1"}),
    ]
    assert table.column("text") == ['hello, "you"', "two\r\nlines", "plain"]


def test_csv_bad_rows_are_errors_on_their_own_line(tmp_path):
    lines = [b"text,label", b"good,1", b"bad \xff byte,1", b"", b'"x"y,1', b"a,b,c", b"one", b"last,0", b'"open,1']
    table = read_table(write(tmp_path, "in.csv", b"\n".join(lines) + b"\n"))
    assert [(row.line, row.error) for row in table.rows] == [
        (2, None),
        (3, "invalid UTF-8 byte 0xff at column 5"),
        (4, "empty line"),
        (5, "not valid CSV: ',' expected after '\"'"),
        (6, "3 field(s) where the header has 2"),
        (7, "1 field(s) where the header has 2"),
        (8, None),
        (9, "a quoted field opened here is never closed (it runs to the end of the file)"),
    ]
    assert table.column("text") == ["good", None, None, None, None, None, "last", None]


def test_tsv_has_no_quoting(tmp_path):
    # csv's default dialect would open a quoted field at `"` and swallow the next lines into one row
    path = write(tmp_path, "in.tsv", 'text\tlabel\r\n"quoted at start\t1\nsays "hi\t0\nlast"\t1\n')
    table = read_table(path)
    assert [row.record["text"] for row in table.rows] == ['"quoted at start', 'says "hi', 'last"']
    assert [row.line for row in table.rows] == [2, 3, 4]


def test_tsv_bad_rows(tmp_path):
    path = write(tmp_path, "in.tsv", b"text\tlabel\nok\t1\n\nno tab\n\xc3(\t1\n")
    assert [(row.line, row.error) for row in read_table(path).rows] == [
        (2, None),
        (3, "empty line"),
        (4, "1 field(s) where the header has 2"),
        (5, "invalid UTF-8 byte 0xc3 at column 1"),
    ]


def test_jsonl_splits_on_newline_only(tmp_path):
    texts = ["a\u2028b", "c\u2029d", "e\x85f", "g\x1ch"]  # str.splitlines() would split each of them
    path = write(tmp_path, "in.jsonl", "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))
    table = read_table(path)
    assert table.column("text") == texts and [row.line for row in table.rows] == [1, 2, 3, 4]


def test_jsonl_bad_lines_keep_their_place(tmp_path):
    data = b'\xef\xbb\xbf{"text": "a"}\r\n{broken\n\n[1, 2]\n{"text": "\xff"}\n{"other": 1}\n'
    table = read_table(write(tmp_path, "in.jsonl", data))
    assert table.columns == ["text", "other"]
    assert [(row.line, row.error) for row in table.rows] == [
        (1, None),
        (2, "not JSON: Expecting property name enclosed in double quotes (column 2)"),
        (3, "empty line"),
        (4, "not a JSON object but list"),
        (5, "invalid UTF-8 byte 0xff at column 11"),
        (6, None),
    ]
    assert table.column("text") == ["a", None, None, None, None, None]


def test_json_array_and_json_lines(tmp_path):
    table = read_table(write(tmp_path, "a.json", '[\n  {"text": "a"},\n  {"text": "b", "label": 1},\n  3\n]\n'))
    assert table.columns == ["text", "label"]
    assert table.rows == [
        Row(2, {"text": "a"}),
        Row(3, {"text": "b", "label": 1}),
        Row(4, None, "not a JSON object but int"),
    ]
    assert read_table(write(tmp_path, "b.json", '{"text": "a"}\n{"text": "b"}\n')).column("text") == ["a", "b"]
    with pytest.raises(ValueError, match=r"c\.json, line 4: not JSON: Expecting value"):
        read_table(write(tmp_path, "c.json", '[\n {"text": "a"},\n {"text": \n]'))
    with pytest.raises(ValueError, match=r"d\.json, line 2: invalid UTF-8 byte 0xff"):
        read_table(write(tmp_path, "d.json", b'[\n {"text": "\xff"}\n]'))
    with pytest.raises(ValueError, match="malformed"):
        read_table(write(tmp_path, "e.json", '[{"text": "a"}'))


@pytest.mark.parametrize(
    "name, data, error, message",
    [
        ("header.csv", "text,label\r\n", ValueError, "has a header line but no rows"),
        ("header.tsv", "\ufefftext\n", ValueError, "has a header line but no rows"),
        ("empty.jsonl", "", ValueError, "is empty"),
        ("blank.csv", "\n \n", ValueError, "is empty"),
        ("array.json", "[ ]", ValueError, "empty JSON array"),
        ("twice.csv", "a,b,a\n1,2,3\n", ValueError, r"column\(s\) 'a' more than once"),
        ("badhead.tsv", b"te\xffxt\n1\n", ValueError, r"line 1 \(the header\): invalid UTF-8"),
        ("utf16.csv", "text\n1\n".encode("utf-16"), ValueError, "UTF-16"),
        ("notes.txt", "text\n", ValueError, r"notes\.txt is not a \.csv, \.tsv, \.json or \.jsonl file"),
    ],
)
def test_whole_file_problems_name_the_file(tmp_path, name, data, error, message):
    path = write(tmp_path, name, data)
    with pytest.raises(error, match=message) as info:
        read_table(path)
    assert str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.csv does not exist"):
        read_table(tmp_path / "nothing.csv")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(IsADirectoryError, match=r"folder\.jsonl is a folder"):
        read_table(tmp_path / "folder.jsonl")


def test_column_and_strict_records(tmp_path):
    good = read_table(write(tmp_path, "good.tsv", "text\tlabel\na\t1\nb\t0\n"))
    assert good.records() == [{"text": "a", "label": "1"}, {"text": "b", "label": "0"}]
    with pytest.raises(ValueError, match=r"good\.tsv has no column 'review' \(columns: 'text', 'label'\)"):
        good.column("review")
    bad = read_table(write(tmp_path, "bad.jsonl", '{"text": "a"}\nnope\n{"text": "b"}\n\n'))
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: not JSON: .* \(2 bad rows in all; this is the first\)"):
        bad.records()
    assert [row.line for row in bad.bad_rows] == [2, 4] and bad.where(bad.rows[1]).endswith("bad.jsonl, line 2")
    unreadable = read_table(write(tmp_path, "unreadable.jsonl", "nope\n"))
    with pytest.raises(ValueError, match="has no readable row; first problem at line 1: not JSON"):
        unreadable.column("text")
