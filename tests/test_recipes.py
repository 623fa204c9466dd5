"""The shipped recipes stay runnable: each names only known arguments, in combinations train.py accepts, and trains
with them."""

import json
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_DATA

import train
from multitask_bert.card import data_attribution

RECIPES = sorted((Path(__file__).parent.parent / "recipes").rglob("*.yaml"))


def test_the_recipes_are_found():
    assert {"cpu.yaml", "gpu.yaml"} <= {path.name for path in RECIPES}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: str(path.relative_to(path.parents[1])))
def test_every_recipe_parses(recipe, tmp_path):
    model_args, data_args, training_args = train.parse_args([str(recipe), "--output_dir", str(tmp_path)])
    assert training_args.output_dir == str(tmp_path)  # the command line still overrides the recipe
    assert data_args.sentiment_train or data_args.translation_train


# Each task's demo files, standing in for a recipe's data of that split (the test split reads the validation file).
DEMO_FILES = {
    (task, split): DEMO_DATA / f"{task}_{'train' if split == 'train' else 'validation'}.jsonl"
    for task in ("sentiment", "translation")
    for split in ("train", "validation", "test")
}


def demo_data_args(values: dict) -> list[str]:
    """A recipe's data options (`values`: the recipe as read) pointed at the demo files, one per source the recipe
    names (so that its per-source weights and concatenation still line up); options it sets to none stay none."""
    args = []
    for (task, split), demo in DEMO_FILES.items():
        sources = values.get(f"{task}_{split}")
        if sources in (None, "none"):
            continue
        count = 1 if isinstance(sources, str) else len(sources)
        args += [f"--{task}_{split}", *[str(demo)] * count]
    return args


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: str(path.relative_to(path.parents[1])))
def test_every_recipe_trains(recipe, tiny_bert_dir, saved, tmp_path):
    """Every setting of the recipe but its data, model size and length runs: two steps on the demo data, from the tiny
    base (or, for a recipe that continues a trained folder, from a tiny trained one), evaluated and saved."""
    values = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    if "model_name_or_path" in values:
        model = ["--model_name_or_path", str(saved)]
    else:
        model = ["--base_model", str(tiny_bert_dir), "--decoder_layers", "1"]  # the tiny base has two layers
    out = tmp_path / "run"
    results = train.main(
        [str(recipe), *model, *demo_data_args(values), "--output_dir", str(out), "--max_steps", "2"]
        + ["--eval_steps", "1", "--save_steps", "1", "--max_train_samples", "16", "--max_eval_samples", "4"]
        + ["--max_test_samples", "4", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4"]
        + ["--max_source_length", "32", "--max_target_length", "32", "--generation_max_length", "4"]
        + ["--logging_steps", "1", "--use_cpu", "true", "--dataloader_pin_memory", "false"]
    )
    state = json.loads((out / "train_results.json").read_text(encoding="utf-8"))
    assert state["epoch"] > 0 and results
    assert {"config.json", "model.safetensors", "README.md", "training_curves.png"} <= {p.name for p in out.iterdir()}


# Each recipe is complete on its own (readable, runnable alone), so the ones that promise recipes/cpu.yaml's data
# repeat it: these options must stay equal to cpu.yaml's, or the stage and the GPU run drift from what they describe.
SAME_DATA = {
    "cpu_stage2.yaml": [  # "every batch a translation batch of stage one's mix"
        "translation_train",
        "translation_train_weights",
        "translation_train_concat",
        "translation_validation",
        "sentiment_validation",
        "max_source_length",
        "max_target_length",
        "max_eval_samples",
    ],
    "gpu.yaml": [  # "the data of recipes/cpu.yaml", at its own lengths
        "sentiment_train",
        "sentiment_train_weights",
        "sentiment_validation",
        "sentiment_test",
        "translation_train",
        "translation_train_weights",
        "translation_train_concat",
        "translation_validation",
        "translation_test",
    ],
}


@pytest.mark.parametrize("name", sorted(SAME_DATA))
def test_recipes_that_reuse_cpu_yamls_data_match_it(name):
    folder = Path(__file__).parent.parent / "recipes"
    stage_one = yaml.safe_load((folder / "cpu.yaml").read_text(encoding="utf-8"))
    recipe = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
    for option in SAME_DATA[name]:
        assert recipe[option] == stage_one[option], f"recipes/{name}: {option} differs from recipes/cpu.yaml's"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: str(path.relative_to(path.parents[1])))
def test_every_data_set_a_recipe_names_has_its_licence_in_the_card(recipe):
    values = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    named = [values.get(f"{task}_{split}") for task, split in DEMO_FILES]
    sources = [
        s for value in named if value not in (None, "none") for s in ([value] if isinstance(value, str) else value)
    ]
    unknown = [s for s in sources if data_attribution(s) == "licence: see the data set's source"]
    assert sources and not unknown
