"""The reference model keeps its quality: its weights, loaded, saved and reloaded by the project's current code and
run through the project's current pipeline, score within 2 points of what was measured when the reference run
finished (`reference/floor.json`), on the first 200 SST-2 validation sentences (accuracy) and the first 100 Tatoeba
validation pairs (chrF++, greedy). A change to modeling, generation, tokenization or saving that breaks the model
fails here.

    PYTHONPATH=. python tests/test_quality_floor.py --write   # the floor of a new reference model, once

The sentences come from `../shared/data` (SST-2 validation, Tatoeba valid), beside the project's folder.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer

from modeling_multitask import MultitaskBertModel
from multitask_bert.build import save_model
from multitask_bert.metrics import sentiment_scores, translation_scores
from multitask_bert.space import model_requirements
from pipeline_multitask import MultitaskPipeline

ROOT = Path(__file__).resolve().parents[1]

REFERENCE = ROOT / "reference"
FLOOR = REFERENCE / "floor.json"
DATA = ROOT.parent / "shared" / "data"
SETS = {"sst2": (DATA / "sst2" / "validation.jsonl", 200), "tatoeba": (DATA / "tatoeba_en_mr" / "valid.jsonl", 100)}
TOLERANCE = 2.0  # points: accuracy in percent, chrF++ on its 0-100 scale


def first_rows(path: Path, n: int) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the quality floor is measured on ../shared/data beside the project"
        )
    with path.open(encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def floor_scores(model_dir: Path, tmp_dir: Path) -> dict[str, float]:
    """SST-2 accuracy (percent) and Tatoeba chrF++ of the model in `model_dir`, after a save and reload by the
    project's code; translation greedy, at most 64 new tokens, batches of 25."""
    torch.manual_seed(0)
    model = MultitaskBertModel.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
    save_model(model, tokenizer, tmp_dir / "resaved")
    model = MultitaskBertModel.from_pretrained(tmp_dir / "resaved", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_dir / "resaved", trust_remote_code=True)
    pipe = MultitaskPipeline(model=model, tokenizer=tokenizer)

    sst2 = first_rows(*SETS["sst2"])
    labels = [model.config.label2id[r["label"]] if isinstance(r["label"], str) else r["label"] for r in sst2]
    outputs = pipe([r["text"] for r in sst2], tasks="sentiment", batch_size=25)
    predicted = [model.config.label2id[o["label"]] for o in outputs]
    pairs = first_rows(*SETS["tatoeba"])
    outputs = pipe([p["en"] for p in pairs], tasks="translation", batch_size=25, num_beams=1, max_new_tokens=64)
    chrfpp = translation_scores([o["translation"] for o in outputs], [p["mr"] for p in pairs])[0]["chrfpp"]
    return {
        "sst2_accuracy": round(100 * sentiment_scores(predicted, labels)[0]["accuracy"], 2),
        "tatoeba_chrfpp": chrfpp,
    }


def test_reference_model_keeps_its_quality(tmp_path):
    expected = json.loads(FLOOR.read_text(encoding="utf-8"))
    measured = floor_scores(REFERENCE, tmp_path)
    for name, value in measured.items():
        assert abs(value - expected[name]) <= TOLERANCE, (
            f"{name}: {value} now, {expected[name]} when the reference model was made (tolerance {TOLERANCE})"
        )


def test_reference_model_carries_the_projects_current_code_and_requirements():
    # AutoModel, pipeline(), predict.py and the demo page run the folder's own copy of the model's code: a change to
    # the project's copy must reach it (copy the three files into reference/), or users run the old code
    for name in ("configuration_multitask.py", "modeling_multitask.py", "pipeline_multitask.py"):
        assert (REFERENCE / name).read_text() == (ROOT / name).read_text(), f"reference/{name} is not ./{name}"
    assert model_requirements() in (REFERENCE / "requirements.txt").read_text()  # the card points to it
    assert json.loads((REFERENCE / "tokenizer.json").read_text())["truncation"] is None  # as any saved folder's


def test_predict_uses_the_reference_model_when_no_model_is_named(capsys):
    import predict

    assert predict.cli(["--text", "What a waste of two hours.", "--task", "sentiment"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "negative"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        scores = floor_scores(REFERENCE, Path(tmp))
    FLOOR.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {FLOOR}: {scores}")
