"""Prediction command: sentiment and/or Marathi translation for English sentences, JSON Lines out.

    python predict.py --model outputs/multitask-bert --text "The film was wonderful." "Where is the station?"
    python predict.py --model you/multitask-bert --input sentences.jsonl --text_column text --output predictions.jsonl
    python predict.py --model outputs/multitask-bert --input reviews.csv --task sentiment --batch_size 64

Every input row gives exactly one output line, in order: `{"row": i, "text": ..., "label": ..., "score": ...,
"translation": ...}`, or `{"row": i, "error": "..."}` for a row that is empty, not text or longer than the model
takes. A bad row never stops the run.
"""

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm
from transformers import HfArgumentParser, pipeline


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "a saved model folder or a Hub id"})
    text: list[str] | None = field(default=None, metadata={"help": "one or more sentences"})
    input: str | None = field(default=None, metadata={"help": "a .jsonl, .csv or .tsv file of sentences"})
    text_column: str = field(default="text", metadata={"help": "column or JSON field holding the sentence"})
    output: str | None = field(default=None, metadata={"help": "JSON Lines file to write; standard output if unset"})
    task: Literal["both", "sentiment", "translation"] = field(default="both", metadata={"help": "what to predict"})
    batch_size: int = field(default=16, metadata={"help": "sentences per batch"})
    num_beams: int = field(default=4, metadata={"help": "beams for translation"})
    max_new_tokens: int = field(default=128, metadata={"help": "longest translation, in tokens"})
    revision: str | None = field(default=None, metadata={"help": "Hub revision (commit) of the model and its code"})

    def __post_init__(self):
        if (self.text is None) == (self.input is None):
            raise ValueError("give sentences with --text or a file with --input (one of the two)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def read_rows(args: PredictArguments) -> list:
    """The values to predict on, one per row, as found (validation happens per row)."""
    if args.text is not None:
        return list(args.text)
    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"input file {args.input!r} does not exist")
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                rows.append(ValueError(f"line {number + 1} is not JSON: {err.msg}"))
                continue
            rows.append(record.get(args.text_column) if isinstance(record, dict) else record)
        return rows
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if args.text_column not in (reader.fieldnames or []):
                raise ValueError(f"{args.input!r} has no column {args.text_column!r} (columns: {reader.fieldnames})")
            return [row[args.text_column] for row in reader]
    raise ValueError(f"{args.input!r} is not a .jsonl, .csv or .tsv file")


def row_errors(rows: list, tokenizer, max_tokens: int) -> dict[int, str]:
    """Row index -> why it cannot be predicted; the texts' lengths come from one batched tokenizer call."""
    errors = {}
    for i, value in enumerate(rows):
        if isinstance(value, Exception):
            errors[i] = str(value)
        elif not isinstance(value, str):
            errors[i] = f"not text: {type(value).__name__}"
        elif not value.strip():
            errors[i] = "empty text"
    texts = [i for i in range(len(rows)) if i not in errors]
    lengths = map(len, tokenizer([rows[i] for i in texts])["input_ids"]) if texts else []
    for i, n in zip(texts, lengths):
        if n > max_tokens:
            errors[i] = f"too long: {n} tokens, the model takes at most {max_tokens}"
    return errors


def predict(args: PredictArguments, out) -> int:
    """Write one JSON line per row to `out`; returns the number of rows with an error."""
    pipe = pipeline(model=args.model, trust_remote_code=True, revision=args.revision)
    max_tokens = pipe.model.config.encoder.max_position_embeddings
    rows = read_rows(args)
    errors = row_errors(rows, pipe.tokenizer, max_tokens)
    good = [i for i in range(len(rows)) if i not in errors]
    generate = {} if args.task == "sentiment" else {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens}
    results = {}
    with tqdm(total=len(good), desc="Predicting", unit="row", disable=len(good) < 2 * args.batch_size) as bar:
        for start in range(0, len(good), args.batch_size):
            chunk = good[start : start + args.batch_size]
            outputs = pipe([rows[i] for i in chunk], batch_size=args.batch_size, tasks=args.task, **generate)
            results.update(zip(chunk, outputs))
            bar.update(len(chunk))
    for i, value in enumerate(rows):
        record = {"row": i, "error": errors[i]} if i in errors else {"row": i, "text": value, **results[i]}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(errors)


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(PredictArguments).parse_args_into_dataclasses(args=argv)
    if args.output is None:
        return predict(args, sys.stdout)
    with open(args.output, "w", encoding="utf-8") as out:
        n_errors = predict(args, out)
    print(f"Wrote {args.output} ({n_errors} row(s) with an error)", file=sys.stderr)
    return n_errors


if __name__ == "__main__":
    main()
