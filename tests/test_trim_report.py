"""bench/trim_report.py on a folder laid out like ../shared/data (built here from the demo set), with the real
multilingual-e5 tokenizer."""

import json
import re
import shutil
import subprocess
import sys

from conftest import DEMO_DATA, ROOT, write_jsonl

SCRIPT = [sys.executable, "-m", "bench.trim_report"]  # from the project's root


def test_reports_pieces_kept_and_held_out_lengths(tmp_path):
    read = lambda name: [json.loads(line) for line in (DEMO_DATA / name).read_text(encoding="utf-8").splitlines()]  # noqa: E731
    write_jsonl(tmp_path / "sst2" / "train.jsonl", read("sentiment_train.jsonl"))
    write_jsonl(tmp_path / "sst2" / "validation.jsonl", read("sentiment_validation.jsonl"))
    write_jsonl(tmp_path / "tatoeba_en_mr" / "train.jsonl", read("translation_train.jsonl"))
    for folder in ("tatoeba_en_mr/valid.jsonl", "ntrex128_en_mr/test.jsonl", "tico19_en_mr/test.jsonl"):
        (tmp_path / folder).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO_DATA / "translation_validation.jsonl", tmp_path / folder)
    done = subprocess.run([*SCRIPT, "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    kept = re.search(r"vocabulary trimmed from 250,002 to ([\d,]+) pieces", done.stdout)
    assert kept and int(kept.group(1).replace(",", "")) < 250_002
    rows = [
        line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "sentences" not in line
    ]
    assert len(rows) == 7
    for name, sentences, before, after, _ in rows:
        assert int(sentences.replace(",", "")) == 40, name
        assert float(after) >= float(before), name  # dropped pieces only ever split words further


def test_missing_data_is_named(tmp_path):
    done = subprocess.run([*SCRIPT, "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and str(tmp_path / "sst2" / "train.jsonl") in done.stderr
