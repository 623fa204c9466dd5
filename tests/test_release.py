"""A release folder: half-precision weights on disk, float32 when loaded, the same predictions within half-precision
rounding, the run's card and curves carried along, complete or absent."""

import pytest
import torch
from conftest import ENGLISH, write_bare_card
from huggingface_hub import ModelCard
from safetensors import safe_open
from transformers import AutoModel

import release
from multitask_bert.card import CARRIED_RESULTS, SCORED_BEGIN, SCORED_KEY, add_eval_results, eval_results
from multitask_bert.evaluation import SetResult
from multitask_bert.space import model_requirements


@pytest.fixture
def run_folder(saved):
    (saved / "README.md").write_text("the run's card")
    return saved


def test_half_precision_on_disk_float32_when_loaded(run_folder, tiny_model, tiny_tokenizer, tmp_path):
    out = release.main(["--model", str(run_folder), "--out", str(tmp_path / "rel")])
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert (out / "README.md").read_text() == "the run's card"
    assert model_requirements() in (out / "requirements.txt").read_text()  # what the card says loading it needs
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


def test_release_never_deletes_its_inputs_nor_releases_a_lora_base(run_folder, tmp_path):
    before = {f.name: f.read_bytes() for f in run_folder.iterdir()}
    for out in (run_folder, run_folder.parent):  # the model's folder, or one holding it
        with pytest.raises(ValueError, match=f"--out {out} is --model {run_folder}, or a folder holding it"):
            release.main(["--model", str(run_folder), "--out", str(out), "--overwrite", "true"])
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ValueError, match=f"--out {other} is --average {other}"):
        release.main(["--model", str(run_folder), "--average", str(run_folder), str(other), "--out", str(other)])
    assert {f.name: f.read_bytes() for f in run_folder.iterdir()} == before
    (run_folder / "translation").mkdir()  # a LoRA run's folder: the frozen base, and one folder per task's adapter
    (run_folder / "translation" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"holds LoRA adapters \(translation\): release.py runs plain models"):
        release.main(["--model", str(run_folder), "--out", str(tmp_path / "rel")])
    assert not (tmp_path / "rel").exists()


def test_generation_defaults_chosen_for_the_release(run_folder, tmp_path):
    out = release.main(
        ["--model", str(run_folder), "--out", str(tmp_path / "rel"), "--no_repeat_ngram_size", "3", "--num_beams", "5"]
    )
    generation = AutoModel.from_pretrained(out, trust_remote_code=True).generation_config
    assert (generation.no_repeat_ngram_size, generation.num_beams) == (3, 5)
    with pytest.raises(ValueError, match="num_beams must be at least 1"):
        release.main(["--model", str(run_folder), "--out", str(tmp_path / "x"), "--num_beams", "0"])

    # a greedy release of a model whose beam search has a length penalty drops the penalty, which it cannot keep
    chosen = ["--length_penalty", "1.5", "--no_repeat_ngram_size", "3"]
    beamed = release.main(["--model", str(run_folder), "--out", str(tmp_path / "beamed"), *chosen])
    greedy = release.main(["--model", str(beamed), "--out", str(tmp_path / "greedy"), "--num_beams", "1"])
    generation = AutoModel.from_pretrained(greedy, trust_remote_code=True).generation_config
    assert (generation.num_beams, generation.length_penalty, generation.no_repeat_ngram_size) == (1, None, 3)
    with pytest.raises(ValueError, match="--num_beams 1 --length_penalty 1.5: the release's generation settings are"):
        release.main(
            ["--model", str(beamed), "--out", str(tmp_path / "x"), "--num_beams", "1", "--length_penalty", "1.5"]
        )
    assert not (tmp_path / "x").exists()
    (run_folder / "generation_config.json").unlink()  # a folder without one: the model's own defaults, as it loads
    plain = release.main(["--model", str(run_folder), "--out", str(tmp_path / "plain"), "--num_beams", "2"])
    assert AutoModel.from_pretrained(plain, trust_remote_code=True).generation_config.num_beams == 2


def test_card_widget_shows_what_the_release_answers(saved, tiny_tokenizer, tmp_path):
    from huggingface_hub import ModelCard, ModelCardData

    from multitask_bert.card import WIDGET_TEXTS, record_widget_outputs, widget_examples

    stale = [{"label": "positive", "score": 0.9, "translation": "stale"}] * len(WIDGET_TEXTS)
    data = ModelCardData(library_name="transformers", widget=widget_examples(WIDGET_TEXTS, stale))
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n# run\n\nbody kept\n").save(saved / "README.md")
    out = release.main(["--model", str(saved), "--out", str(tmp_path / "rel"), "--no_repeat_ngram_size", "2"])
    card = ModelCard.load(out / "README.md")
    loaded = AutoModel.from_pretrained(out, trust_remote_code=True)
    assert card.data.widget == widget_examples(WIDGET_TEXTS, record_widget_outputs(loaded, tiny_tokenizer))
    assert all(example["output"]["text"] != "stale" for example in card.data.widget)
    assert "body kept" in card.text


def test_average_releases_the_mean_of_the_checkpoints(run_folder, tiny_model, tiny_tokenizer, tmp_path):
    from multitask_bert.build import save_model

    other = tmp_path / "other"
    torch.manual_seed(1)
    with torch.no_grad():
        for p in tiny_model.parameters():
            p.add_(torch.randn_like(p))
    save_model(tiny_model, tiny_tokenizer, other)
    out = release.main(
        [
            "--model",
            str(run_folder),
            "--average",
            str(run_folder),
            str(other),
            "--out",
            str(tmp_path / "rel"),
            "--dtype",
            "float32",
        ]
    )
    first, second, mean = (
        AutoModel.from_pretrained(p, trust_remote_code=True).state_dict() for p in (run_folder, other, out)
    )
    name = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(first[name], second[name])
    for name in first:
        assert torch.allclose(mean[name], (first[name] + second[name]) / 2, atol=1e-6), name
    card = (out / "README.md").read_text()
    assert "the run's card" in card and "**Not these weights' scores.**" in card  # --model's card, marked
    assert not (out / "all_results.json").exists()  # --model's scores are not the mean's


def test_an_averaged_releases_card_claims_no_scores(run_folder, tmp_path):
    (run_folder / "all_results.json").write_text('{"eval_combined": 50.0}')
    results = [SetResult("tatoeba", "translation", "validation", "t.jsonl", 4, {"chrfpp": 60.0}, {}, 1.0)]
    write_bare_card(run_folder, results=results)
    # whole-set scores of the run's weights too, as evaluate_model.py --add_to_card writes them
    scored = {"tatoeba/validation": {"rows": 4, "settings": "beam 4"}}
    add_eval_results(str(run_folder), eval_results(results), scored_with=scored)
    assert ModelCard.load(run_folder / "README.md").data.eval_results  # the run's own scores
    assert CARRIED_RESULTS in (run_folder / "README.md").read_text()
    out = release.main(
        ["--model", str(run_folder), "--average", str(run_folder), str(run_folder), "--out", str(tmp_path / "rel")]
    )
    card = ModelCard.load(out / "README.md")
    assert not card.data.eval_results  # the Hub would show them as the release's
    section = card.text.split("## Results\n", 1)[1]
    assert section.lstrip().startswith("**Not these weights' scores.** This release is the mean of the weights of 2")
    assert "evaluate_model.py --model <this folder> --add_to_card true" in section
    assert not (out / "all_results.json").exists() and not (out / "eval_results.json").exists()
    assert SCORED_KEY not in card.data.to_dict() and SCORED_BEGIN not in card.text  # its scored section is gone too
    assert CARRIED_RESULTS not in card.text and "the run's `all_results.json` (not in this folder)" in card.text


def test_average_refuses_other_models(run_folder, tiny_tokenizer, tmp_path):
    from conftest import tiny_config

    from modeling_multitask import MultitaskBertModel
    from multitask_bert.build import save_model

    with pytest.raises(ValueError, match="two or more"):
        release.main(["--model", str(run_folder), "--average", str(run_folder), "--out", str(tmp_path / "rel")])
    with pytest.raises(FileNotFoundError, match="holds no model"):
        release.main(
            ["--model", str(run_folder), "--average", str(run_folder), str(tmp_path), "--out", str(tmp_path / "r")]
        )
    config = tiny_config(len(tiny_tokenizer))
    config.decoder.num_hidden_layers = 2  # another model: one more decoder layer
    save_model(MultitaskBertModel(config), tiny_tokenizer, tmp_path / "deeper")
    with pytest.raises(ValueError, match="is not the same model"):
        release.main(
            [
                "--model",
                str(run_folder),
                "--average",
                str(run_folder),
                str(tmp_path / "deeper"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_model_name_titles_the_release(saved, tmp_path):
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name="transformers", model_name="cpu-run")
    body = '# cpu-run\n\nbody kept\n\nrepo = "your-name/cpu-run"\n'
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(saved / "README.md")
    out = release.main(["--model", str(saved), "--out", str(tmp_path / "rel"), "--model_name", "multitask-bert"])
    card = ModelCard.load(out / "README.md")
    assert card.data.model_name == "multitask-bert"
    assert card.text.strip().splitlines()[0] == "# multitask-bert" and "body kept" in card.text
    assert 'repo = "your-name/multitask-bert"' in card.text  # the usage examples name the release
    assert "cpu-run" not in str(card)
