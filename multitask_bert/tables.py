"""One reader for the project's user data files (.csv, .tsv, .json, .jsonl): prediction inputs and training data.

Every row keeps the line of the file where it starts, and a row that cannot be read is kept as an error instead of
stopping the reader, so that one bad line never shifts the others:

    table = read_table("reviews.tsv")
    for row, text in zip(table.rows, table.column("text")):   # lenient: prediction reports each bad row
        ...
    records = table.records()                                  # strict: training stops on the first bad row

Formats, by suffix:
- `.csv`: RFC 4180 (the `csv` module, strict quoting); a quoted field may span lines; the first record is the header.
- `.tsv`: no quoting at all: every line is one row, split on tabs (a `"` is an ordinary character); the first line
  is the header.
- `.jsonl`: one JSON object per line. Lines are split on "\\n" only (a trailing "\\r" is dropped): U+2028, U+2029 and
  U+0085 are valid inside JSON strings and must not end a row.
- `.json`: a JSON array of objects, or JSON Lines content.

The bytes are decoded line by line as UTF-8, so an undecodable byte spoils its own row only; a UTF-8 byte-order mark at
the start is dropped. Whole-file problems (missing file, folder, unknown suffix, empty file, header without rows, a
broken JSON array) raise at once, naming the path.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
EMPTY_LINE = "empty line"


class Row(NamedTuple):
    line: int  # 1-based line of the file where the row starts
    record: dict | None  # the row's fields; None when the row could not be read
    error: str | None = None  # why the row could not be read


@dataclass
class Table:
    path: Path
    columns: list[str]  # the header of a .csv/.tsv; the keys of all JSON rows, in first-seen order
    rows: list[Row]

    def where(self, row: Row) -> str:
        return f"{self.path}, line {row.line}"

    @property
    def bad_rows(self) -> list[Row]:
        return [row for row in self.rows if row.error is not None]

    def column(self, name: str, option: str | None = None) -> list:
        """The values of column `name`, one per row (None for a row that could not be read or lacks the field).
        Raises `ValueError` naming the file and its columns when no row has it (and `option`, the command's option
        that names the column, where given)."""
        if name in self.columns:
            return [None if row.record is None else row.record.get(name) for row in self.rows]
        if not self.columns and self.bad_rows:  # nothing could be read: the first problem is the useful message
            first = self.bad_rows[0]
            raise ValueError(f"{self.path} has no readable row; first problem at line {first.line}: {first.error}")
        hint = f": name yours with {option}" if option else ""
        raise ValueError(f"{self.path} has no column {name!r} (columns: {', '.join(map(repr, self.columns))}){hint}")

    def records(self, skip_empty_lines: bool = False) -> list[dict]:
        """Every row's fields, for a caller that must not start on bad input (training): raises `ValueError`
        on the first bad row, "FILE, line N: cause", with the number of bad rows. With `skip_empty_lines`, blank
        lines (a trailing one, say) are no rows rather than errors."""
        return [row.record for row in self.good_rows(skip_empty_lines)]

    def good_rows(self, skip_empty_lines: bool = False) -> list[Row]:
        """Every row, with its line, when all of them could be read (`records`)."""
        rows = [row for row in self.rows if not (skip_empty_lines and row.error == EMPTY_LINE)]
        bad = [row for row in rows if row.error is not None]
        if bad:
            more = f" ({len(bad)} bad rows in all; this is the first)" if len(bad) > 1 else ""
            raise ValueError(f"{self.where(bad[0])}: {bad[0].error}{more}")
        return rows


def read_table(path: str | Path) -> Table:
    """Read a .csv, .tsv, .json or .jsonl file; see the module's docstring for what is an error and where."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path} is not a .csv, .tsv, .json or .jsonl file (by its name)")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; a {suffix} file was expected")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    data = _file_bytes(path)
    if suffix in (".csv", ".tsv"):
        columns, rows = _read_delimited(path, data, tab=suffix == ".tsv")
        if not rows:
            raise ValueError(f"{path} has a header line but no rows")
    elif suffix == ".json" and data.lstrip().startswith(b"["):
        rows = _read_json_array(path, data)
        if not rows:
            raise ValueError(f"{path} holds an empty JSON array: no rows")
        columns = _keys(rows)
    else:
        rows = [_json_row(number, text, error) for number, text, error in _decoded_lines(data)]
        columns = _keys(rows)
    return Table(path=path, columns=columns, rows=rows)


def _file_bytes(path: Path) -> bytes:
    """The file's bytes without a UTF-8 byte-order mark; an empty or UTF-16 file is an error."""
    data = path.read_bytes()
    if data.startswith(UTF16_BOMS):
        raise ValueError(f"{path} is UTF-16 encoded (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    data = data.removeprefix(UTF8_BOM)
    if not data.strip():
        raise ValueError(f"{path} is empty")
    return data


def _decoded_lines(data: bytes, keep_ends: bool = False):
    """(1-based line number, text, decoding error or None) for each line: split on b"\\n" only, a trailing "\\r"
    dropped unless `keep_ends` (then each line keeps its terminator, as the csv module wants)."""
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the file ends with a line terminator: no line after it
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        if keep_ends:
            raw += b"\n"
        elif raw.endswith(b"\r"):
            raw = raw[:-1]
        yield (number, *_decode(raw))


def _decode(raw: bytes) -> tuple[str, str | None]:
    """The line as text, and why it is not UTF-8 (undecodable bytes replaced so that the line keeps its shape)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as err:
        column = len(raw[: err.start].decode("utf-8", errors="replace")) + 1
        return raw.decode("utf-8", errors="replace"), f"invalid UTF-8 byte 0x{raw[err.start]:02x} at column {column}"


def _json_row(number: int, text: str, error: str | None) -> Row:
    if error is not None:
        return Row(number, None, error)
    if not text.strip():
        return Row(number, None, EMPTY_LINE)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return Row(number, None, f"not JSON: {err.msg} (column {err.colno})")
    return _object_row(number, value)


def _object_row(number: int, value) -> Row:
    if not isinstance(value, dict):
        return Row(number, None, f"not a JSON object but {type(value).__name__}")
    return Row(number, value)


def _keys(rows: list[Row]) -> list[str]:
    """Every key of the rows' records, in first-seen order."""
    return list(dict.fromkeys(key for row in rows if row.record is not None for key in row.record))


def _read_json_array(path: Path, data: bytes) -> list[Row]:
    """The objects of a JSON array, each with the line it starts on; a broken array is a whole-file error."""
    for number, _, error in _decoded_lines(data):  # one array: an undecodable byte anywhere spoils it all
        if error is not None:
            raise ValueError(f"{path}, line {number}: {error}")
    text = data.decode("utf-8")
    decoder = json.JSONDecoder()
    rows, line, seen = [], 1, 0
    pos = _skip_space(text, text.index("[") + 1)
    if text.startswith("]", pos):
        return _end_of_array(path, text, pos, rows)
    while True:
        line, seen = line + text.count("\n", seen, pos), pos
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {err.lineno}: not JSON: {err.msg} (column {err.colno})") from None
        rows.append(_object_row(line, value))
        pos = _skip_space(text, pos)
        if not text.startswith(",", pos):
            return _end_of_array(path, text, pos, rows)
        pos = _skip_space(text, pos + 1)


def _end_of_array(path: Path, text: str, pos: int, rows: list[Row]) -> list[Row]:
    if not text.startswith("]", pos) or text[pos + 1 :].strip():
        line = text.count("\n", 0, pos) + 1
        raise ValueError(f"{path}, line {line}: the JSON array is malformed (expected ',' or a final ']')")
    return rows


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_delimited(path: Path, data: bytes, tab: bool) -> tuple[list[str], list[Row]]:
    """Header and rows of a .csv (RFC 4180) or .tsv (no quoting) file."""
    lines = list(_decoded_lines(data, keep_ends=not tab))
    records = _tsv_records(lines) if tab else _csv_records(lines)
    first_line, header, error = next(records)
    if error is not None:
        raise ValueError(f"{path}, line {first_line} (the header): {error}")
    if not header:
        raise ValueError(f"{path}, line {first_line}: the header line is empty")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path}: the header names column(s) {', '.join(map(repr, duplicates))} more than once")
    rows = [_delimited_row(header, *record) for record in records]
    return header, rows


def _delimited_row(header: list[str], line: int, fields: list[str] | None, error: str | None) -> Row:
    if error is not None:
        return Row(line, None, error)
    if not fields:
        return Row(line, None, EMPTY_LINE)
    if len(fields) != len(header):
        return Row(line, None, f"{len(fields)} field(s) where the header has {len(header)}")
    return Row(line, dict(zip(header, fields)))


def _tsv_records(lines: list):
    """(line, fields, error) per line: no quoting, so every line is one record."""
    for number, text, error in lines:
        yield number, (text.split("\t") if text else []), error


def _csv_records(lines: list):
    """(first line, fields, error) per CSV record; a quoted field may span lines, and a record is as bad as the worst
    line it covers."""
    errors = {number: error for number, _, error in lines if error is not None}
    reader = csv.reader((text for _, text, _ in lines), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield start, None, _csv_error(err, start, reader.line_num, len(lines))
            continue
        bad = [number for number in range(start, reader.line_num + 1) if number in errors]
        if bad:
            where = "" if bad[0] == start else f" (line {bad[0]})"
            yield start, None, errors[bad[0]] + where
        else:
            yield start, fields, None


def _csv_error(err: csv.Error, start: int, end: int, last_line: int) -> str:
    if str(err) == "unexpected end of data" and end == last_line:
        return "a quoted field opened here is never closed (it runs to the end of the file)"
    return f"not valid CSV: {err}"
