"""A release folder: half-precision weights on disk, float32 when loaded, the same predictions within half-precision
rounding, the run's card and curves carried along, complete or absent."""

import pytest
import torch
from conftest import ENGLISH
from safetensors import safe_open
from transformers import AutoModel

import release


@pytest.fixture
def run_folder(saved):
    (saved / "README.md").write_text("the run's card")
    return saved


def test_half_precision_on_disk_float32_when_loaded(run_folder, tiny_model, tiny_tokenizer, tmp_path):
    out = release.main(["--model", str(run_folder), "--out", str(tmp_path / "rel")])
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert (out / "README.md").read_text() == "the run's card"
    loaded = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    assert loaded.dtype == torch.float32
    inputs = tiny_tokenizer(ENGLISH, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected, got = tiny_model(**inputs).sentiment_logits, loaded(**inputs).sentiment_logits
    assert torch.allclose(expected, got, atol=1e-2) and not torch.equal(expected, got)  # rounded, not changed


def test_existing_release_needs_overwrite(run_folder, tmp_path):
    (tmp_path / "rel").mkdir()
    with pytest.raises(FileExistsError, match="--overwrite true"):
        release.main(["--model", str(run_folder), "--out", str(tmp_path / "rel")])
    with pytest.raises(FileNotFoundError, match="no config.json"):
        release.main(["--model", str(tmp_path), "--out", str(tmp_path / "other")])


def test_generation_defaults_chosen_for_the_release(run_folder, tmp_path):
    out = release.main(
        ["--model", str(run_folder), "--out", str(tmp_path / "rel"), "--no_repeat_ngram_size", "3", "--num_beams", "5"]
    )
    generation = AutoModel.from_pretrained(out, trust_remote_code=True).generation_config
    assert (generation.no_repeat_ngram_size, generation.num_beams) == (3, 5)
    with pytest.raises(ValueError, match="num_beams must be at least 1"):
        release.main(["--model", str(run_folder), "--out", str(tmp_path / "x"), "--num_beams", "0"])
