"""The shipped recipes stay runnable: each names only known arguments, in combinations train.py accepts."""

from pathlib import Path

import pytest

import train

RECIPES = sorted((Path(__file__).parent.parent / "recipes").rglob("*.yaml"))


def test_the_recipes_are_found():
    assert {"cpu.yaml", "gpu.yaml"} <= {path.name for path in RECIPES}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: str(path.relative_to(path.parents[1])))
def test_every_recipe_parses(recipe, tmp_path):
    model_args, data_args, training_args = train.parse_args([str(recipe), "--output_dir", str(tmp_path)])
    assert training_args.output_dir == str(tmp_path)  # the command line still overrides the recipe
    assert data_args.sentiment_train or data_args.translation_train
