"""Prediction command: sentiment and/or Marathi translation for English sentences, JSON Lines out.

    python predict.py --text "The film was wonderful." "Where is the station?"   # the shipped model, reference/
    python predict.py --model you/multitask-bert --input sentences.jsonl --text_column text --output predictions.jsonl
    python predict.py --model outputs/multitask-bert --input reviews.csv --task sentiment --batch_size 64

Every input row gives exactly one output line, in order: `{"row": i, "text": ..., "label": ..., "score": ...,
"translation": ...}`, or `{"row": i, "line": n, "error": "..."}` for a row that cannot be predicted (not readable,
no text field, empty, not text, longer than the model takes; `line` is the row's line in the input file). A bad row
never stops the run; a bad file, setting or model stops it before anything is written.

Files are read by `multitask_bert/tables.py` (.csv, .tsv, .json, .jsonl). The output file is written through a
temporary file beside it, flushed after each batch, which replaces it only when every row is written: a stopped run
leaves the old output untouched and its finished rows in the temporary file named on standard error.

Exit status: 0 when every row was predicted, 1 when some rows have an error (the last line on standard error gives the
count), 2 when the run could not start or stopped (the message says why).
"""

import json
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple

from tqdm.auto import tqdm
from transformers import AutoConfig, HfArgumentParser, pipeline

from multitask_bert.atomic import atomic_file, same_file
from multitask_bert.build import check_lengths
from multitask_bert.run_layout import check_model, load_named
from multitask_bert.tables import Row, read_table
from multitask_bert.tasks import TASKS, UNTRAINED_WHY, untrained_tasks

SHOWN_ERRORS = 5  # failed rows named on standard error; the output file has them all
# json.dumps leaves these raw inside strings (valid JSON; it escapes the other control characters), yet
# str.splitlines() ends a line at each of them.
LINE_BREAK_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}

# The trained model the project ships: real predictions without training first.
REFERENCE = str(Path(__file__).resolve().parent / "reference")


@dataclass
class PredictArguments:
    model: str = field(
        default=REFERENCE, metadata={"help": "a saved model folder or a Hub id (the shipped reference model if unset)"}
    )
    text: list[str] | None = field(default=None, metadata={"help": "one or more sentences"})
    input: str | None = field(default=None, metadata={"help": "a .jsonl, .json, .csv or .tsv file of sentences"})
    text_column: str = field(default="text", metadata={"help": "column or JSON field holding the sentence"})
    output: str | None = field(default=None, metadata={"help": "JSON Lines file to write; standard output if unset"})
    task: Literal["both", "sentiment", "translation"] = field(default="both", metadata={"help": "what to predict"})
    batch_size: int = field(default=16, metadata={"help": "sentences per batch"})
    num_beams: int | None = field(
        default=None, metadata={"help": "beams for translation (the model's generation_config when unset)"}
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "longest translation, in tokens (the model's generation_config when unset)"}
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision (commit) of the model and its code"})

    def __post_init__(self):
        if (self.text is None) == (self.input is None):
            raise ValueError("give sentences with --text or a file with --input (one of the two)")
        if self.text is not None and self.text_column != "text":
            raise ValueError("--text_column names the column of an --input file; --text gives the sentences: drop it")
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_model(self.model, "predict.py", self.revision)
        if self.output is not None:
            self._check_output()

    def _check_output(self):
        # Writing the output truncates nothing until the end, but the finished file would replace the input.
        if self.input is not None and same_file(self.input, self.output):
            raise ValueError(
                f"--output {self.output} is the input file {self.input} (the same path, a link or a hard link): "
                "the predictions would replace the sentences; choose another output file"
            )
        if os.path.isdir(self.output):
            raise IsADirectoryError(f"--output {self.output} is a folder; give a file name")


class Item(NamedTuple):
    value: object  # what the row holds in the text field (None when the row could not be read)
    error: str | None  # why the row cannot be predicted, known before the model runs
    line: int | None  # the row's line in the input file (None for --text)


def read_items(args: PredictArguments) -> list[Item]:
    """One item per input row, with the errors known without the model; a bad file raises here, before the model
    is loaded."""
    if args.text is not None:
        return [Item(text, text_error(text), None) for text in args.text]
    table = read_table(args.input)
    values = table.column(args.text_column, option="--text_column")
    return [Item(value, field_error(row, value, args.text_column), row.line) for row, value in zip(table.rows, values)]


def field_error(row: Row, value, column: str) -> str | None:
    if row.error is not None:
        return row.error
    if column not in row.record:
        return f"no field {column!r}"
    return text_error(value)


def text_error(value) -> str | None:
    if not isinstance(value, str):
        return f"not text: {type(value).__name__}"
    if not value.strip():
        return "empty text"
    return None


def row_errors(items: list[Item], tokenizer, max_tokens: int) -> dict[int, str]:
    """Row index -> why it cannot be predicted; the texts' lengths come from one batched tokenizer call."""
    errors = {i: item.error for i, item in enumerate(items) if item.error is not None}
    texts = [i for i in range(len(items)) if i not in errors]
    lengths = map(len, tokenizer([items[i].value for i in texts])["input_ids"]) if texts else []
    for i, n in zip(texts, lengths):
        if n > max_tokens:
            errors[i] = f"too long: {n} tokens, the model takes at most {max_tokens}"
    return errors


def predict(args: PredictArguments, pipe, items: list[Item], errors: dict[int, str], out: IO) -> None:
    """Write one JSON line per row to `out`, in input order, each batch as soon as it is predicted (an error row
    goes out as soon as every row before it has)."""
    good = [i for i in range(len(items)) if i not in errors]
    given = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens}
    generate = {} if args.task == "sentiment" else {k: v for k, v in given.items() if v is not None}
    written = 0  # rows 0 .. written-1 are in `out`
    with tqdm(total=len(good), desc="Predicting", unit="row", disable=len(good) < 2 * args.batch_size) as bar:
        for start in range(0, len(good), args.batch_size):
            chunk = good[start : start + args.batch_size]
            outputs = pipe([items[i].value for i in chunk], batch_size=args.batch_size, tasks=args.task, **generate)
            lines = []
            for i, result in zip(chunk, outputs):
                lines += error_lines(items, errors, written, i)
                lines.append(json_line({"row": i, "text": items[i].value, **result}))
                written = i + 1
            write_flushed(out, lines)
            bar.update(len(chunk))
    write_flushed(out, error_lines(items, errors, written, len(items)))


def error_lines(items: list[Item], errors: dict[int, str], start: int, stop: int) -> list[str]:
    """The lines of rows start .. stop-1, which are all error rows."""
    lines = []
    for i in range(start, stop):
        where = {} if items[i].line is None else {"line": items[i].line}
        lines.append(json_line({"row": i, **where, "error": errors[i]}))
    return lines


def json_line(record: dict) -> str:
    # Marathi stays readable (no \u escapes), but the characters that readers using str.splitlines() take for line
    # ends are escaped, so that every reader sees one line per row.
    line = json.dumps(record, ensure_ascii=False)
    return line.translate(LINE_BREAK_ESCAPES) + "\n"


def write_flushed(out: IO, lines: list[str]) -> None:
    # One write per batch, then flushed: a killed run leaves the batches written so far, whole lines (a kill in
    # the middle of a very large write could cut its last line, which a reader of the partial file drops).
    if lines:
        out.write("".join(lines))
        out.flush()


def report(args: PredictArguments, items: list[Item], errors: dict[int, str]) -> None:
    """The first failed rows, then the count, as the last line on standard error."""
    for i in sorted(errors)[:SHOWN_ERRORS]:
        where = f"--text {i + 1}" if items[i].line is None else f"{args.input}, line {items[i].line}"
        print(f"row {i} ({where}): {errors[i]}", file=sys.stderr)
    destination = "standard output" if args.output is None else args.output
    print(f"Wrote {len(items)} row(s) to {destination}: {len(errors)} with an error", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Predict every row; returns the number of rows with an error."""
    (args,) = HfArgumentParser(PredictArguments).parse_args_into_dataclasses(args=argv)
    items = read_items(args)  # a bad input file stops the run before the model is loaded
    config = load_named(
        lambda: AutoConfig.from_pretrained(args.model, revision=args.revision, trust_remote_code=True), args.model
    )
    untrained = untrained_tasks(config, list(TASKS) if args.task == "both" else [args.task])
    if untrained:  # before the weights load
        trained = [task for task in config.trained_tasks if task not in untrained]
        raise ValueError(
            f"--task {args.task}: {args.model} has no trained {' or '.join(untrained)} head ({UNTRAINED_WHY})"
            + (f": give --task {trained[0]}" if trained else "")
        )
    pipe = pipeline(model=args.model, config=config, trust_remote_code=True, revision=args.revision)
    check_lengths(pipe.model.config, [("max_new_tokens", args.max_new_tokens, "decoder")])  # before any row is written
    errors = row_errors(items, pipe.tokenizer, pipe.model.config.encoder.max_position_embeddings)
    if args.output is None:
        predict(args, pipe, items, errors, sys.stdout)
    else:
        with atomic_file(args.output, keep_partial=True) as out:
            print(
                f"Writing {args.output} through {out.name}: it takes the output's name "
                "when every row is written, and keeps the finished rows if the run is stopped",
                file=sys.stderr,
            )
            predict(args, pipe, items, errors, out)
    report(args, items, errors)
    return len(errors)


def cli(argv: list[str] | None = None) -> int:
    """The exit status: 0 when every row was predicted, 1 when some row has an error, 2 when the run could not
    start or stopped (a bad file, setting or model folder: the message says which)."""
    try:
        failed = main(argv)
    except (ValueError, OSError) as err:
        print(f"predict.py: error: {err}", *getattr(err, "__notes__", ()), sep="\n", file=sys.stderr)
        return 2
    except Exception:  # anything else stopped the run too: not status 1, which says some rows have an error
        traceback.print_exc()
        print("predict.py: error: the run stopped (the traceback above says where)", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli())
