"""The Space folder space.py writes and pushes, and what each piece of the project needs installed: a saved model
folder its requirements.txt, training requirements.txt (no demo or test packages), the Space its own list."""

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ENGLISH, ROOT, tiny_train_args
from huggingface_hub import HfApi, SpaceCard
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from transformers import pipeline

import space
import train
from multitask_bert.space import MODEL_PACKAGES, gradio_version, push_space, write_model_requirements, write_space

APP_PACKAGES = {"gradio", "transformers", "torch"}  # what a Space's app.py may import besides the standard library


def requirement_names(path: Path) -> set[str]:
    """The packages a pip requirements file names, following `-r` includes."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(path.parent / line[2:].strip())
        elif line:
            names.add(canonicalize_name(Requirement(line).name))
    return names


def installed_closure(names: set[str]) -> set[str]:
    """`names` and every installed distribution they depend on (extras left out): what pip would install for them."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def run_with_only(names: set[str], code: str, cwd: Path, timeout: int = 600, **popen) -> subprocess.Popen:
    """Start `python -c code` in `cwd` where only the standard library, `names` and their dependencies can be
    imported: every other installed top-level module is marked missing (as if not installed), the project is off
    the path. What passes here works after `pip install` of those names alone."""
    allowed = installed_closure({canonicalize_name(name) for name in names})
    blocked = sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if module.isidentifier() and not any(canonicalize_name(d) in allowed for d in dists)
    )
    bootstrap = f"import sys\nfor name in {blocked!r}:\n    sys.modules.setdefault(name, None)\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    return subprocess.Popen([sys.executable, "-c", bootstrap + code], cwd=cwd, env=env, **popen)


def check_run(names: set[str], code: str, cwd: Path) -> str:
    process = run_with_only(names, code, cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def test_space_folder_card_settings_and_requirements(tmp_path):
    out = write_space("someone/mt", tmp_path / "space", revision="abc123", space_id="someone/mt-demo")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "app.py", "requirements.txt", "space_config.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # written aside, moved in whole
    card = SpaceCard.load(out / "README.md")
    assert card.data.sdk == "gradio" and card.data.models == ["someone/mt"] and card.data.app_file == "app.py"
    assert card.data.sdk_version == gradio_version() == importlib.metadata.version("gradio")  # as tested
    assert card.data.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert card.data.license == "mit" and card.data.pinned is False
    assert {"title", "emoji", "colorFrom", "colorTo"} <= set(card.data.to_dict())
    assert json.loads((out / "space_config.json").read_text()) == {"model": "someone/mt", "revision": "abc123"}
    assert (out / "app.py").read_bytes() == (ROOT / "app.py").read_bytes()
    wanted = (out / "requirements.txt").read_text().split()
    assert [canonicalize_name(Requirement(line).name) for line in wanted] == list(MODEL_PACKAGES)
    assert set(wanted) <= set((ROOT / "requirements.txt").read_text().split())  # the project's bounds, once
    with pytest.raises(FileExistsError):
        write_space("someone/other", out)
    assert json.loads((out / "space_config.json").read_text())["model"] == "someone/mt"  # the old one is kept
    write_space("someone/other", out, replace=True)
    assert SpaceCard.load(out / "README.md").data.models == ["someone/other"]


def test_space_app_imports_nothing_of_the_project():
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) <= APP_PACKAGES, imported


def test_local_model_folder_makes_a_local_space_only(saved, tmp_path, capsys):
    out = write_space(str(saved), tmp_path / "space")
    assert json.loads((out / "space_config.json").read_text()) == {"model": str(saved), "revision": None}
    assert SpaceCard.load(out / "README.md").data.models is None  # no Hub id to link
    with pytest.raises(ValueError, match="which the Hub cannot reach: push the model first"):
        push_space(out, "someone/demo")
    with pytest.raises(SystemExit):
        space.parse_args(["--model", str(saved), "--out", "x", "--space_id", "a/b", "--push"])
    assert "is a local folder the Space cannot reach" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        space.parse_args(["--model", "someone/mt", "--out", "x", "--push"])
    assert "--push needs --space_id" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="already exists: choose another --out, or --overwrite"):
        space.main(["--model", "someone/mt", "--out", str(out)])


def test_a_local_lora_runs_folder_makes_no_space(tmp_path):
    (tmp_path / "model" / "sentiment").mkdir(parents=True)  # a LoRA run: the base, one folder per task's adapter
    (tmp_path / "model" / "sentiment" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"holds LoRA adapters \(sentiment\): a Space runs plain models"):
        write_space(str(tmp_path / "model"), tmp_path / "space")
    assert not (tmp_path / "space").exists()


def test_a_local_folder_with_a_revision_makes_no_space(saved, tmp_path):
    """A revision pins a Hub commit: beside a local folder the Space would record it and load the folder anyway."""
    with pytest.raises(ValueError, match="--model_revision pins a Hub commit, and .* is a local folder"):
        write_space(str(saved), tmp_path / "space", revision="abc123")
    assert not (tmp_path / "space").exists()


def test_a_space_never_replaces_its_model_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    for out in (tmp_path / "model", tmp_path):  # the model's folder, or one holding it
        with pytest.raises(SystemExit, match="is the model .*, or a folder holding it: writing --out would delete"):
            space.main(["--model", str(tmp_path / "model"), "--out", str(out), "--overwrite"])
    assert os.listdir(tmp_path / "model") == ["config.json"]


def test_a_hub_id_that_is_also_a_local_folder_name(saved, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved, tmp_path / "someone" / "mt")  # e.g. --output_dir someone/mt --hub_model_id someone/mt
    out = write_space("someone/mt", tmp_path / "local")
    assert json.loads((out / "space_config.json").read_text())["model"] == str(tmp_path / "someone" / "mt")
    out = write_space("someone/mt", tmp_path / "hub", on_hub=True)  # what train.py says after its push
    assert json.loads((out / "space_config.json").read_text())["model"] == "someone/mt"
    assert SpaceCard.load(out / "README.md").data.models == ["someone/mt"]


def test_push_creates_a_gradio_space_and_uploads_the_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))

    def upload(self, **kw):
        files = sorted(p.name for p in Path(kw["folder_path"]).iterdir())
        calls.append(("upload", kw["repo_id"], kw["repo_type"], files))
        return SimpleNamespace(oid="f00d")

    monkeypatch.setattr(HfApi, "upload_folder", upload)
    out = tmp_path / "space"
    space.main(
        ["--model", "someone/mt", "--model_revision", "abc", "--out", str(out), "--space_id", "me/demo", "--push"]
    )
    create, uploaded = calls
    assert create[:2] == ("create", "me/demo")
    assert create[2]["repo_type"] == "space" and create[2]["space_sdk"] == "gradio" and create[2]["exist_ok"]
    assert uploaded == ("upload", "me/demo", "space", ["README.md", "app.py", "requirements.txt", "space_config.json"])


def test_saved_folder_runs_with_only_its_requirements(saved, tmp_path):
    requirements = write_model_requirements(saved)
    names = requirement_names(requirements)
    assert names == set(MODEL_PACKAGES)  # no sentencepiece or protobuf: tokenizer.json is enough
    expected = pipeline(model=str(saved), trust_remote_code=True)(ENGLISH[0], num_beams=2)
    code = (
        "import json\nfrom transformers import pipeline\n"
        f"pipe = pipeline(model={str(saved)!r}, trust_remote_code=True)\n"
        f"print(json.dumps(pipe({ENGLISH[0]!r}, num_beams=2)))\n"
    )
    output = check_run(names, code, cwd=tmp_path)
    assert json.loads(output.strip().splitlines()[-1]) == pytest.approx(expected)


def test_training_needs_no_demo_or_test_packages(tiny_bert_dir, tmp_path):
    names = requirement_names(ROOT / "requirements.txt")
    assert not names & {"gradio", "tensorboard", "pytest", "playwright"}
    assert {"gradio"} <= requirement_names(ROOT / "requirements-demo.txt")
    assert names | {"gradio", "tensorboard", "pytest", "playwright"} <= requirement_names(ROOT / "requirements-dev.txt")
    args = tiny_train_args(
        tiny_bert_dir,
        tmp_path / "out",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
    )
    code = f"import train\ntrain.main({args!r})\n"
    check_run(names, code, cwd=ROOT)  # from the project's root, which puts it on the path: training runs from there
    assert (tmp_path / "out" / "config.json").is_file() and (tmp_path / "out" / "requirements.txt").is_file()


def test_report_to_tensorboard_without_it_says_what_to_install(tiny_bert_dir, tmp_path, monkeypatch):
    for name in ("tensorboard", "tensorboardX"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(ValueError, match="needs TensorBoard, which is not installed: pip install tensorboard"):
        train.main(tiny_train_args(tiny_bert_dir, tmp_path / "out", "--report_to", "tensorboard"))
    assert not (tmp_path / "out").exists()  # before any work


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"^# tests.*\n(.+)$", readme, flags=re.MULTILINE)
    return command.strip()


def test_ci_runs_exactly_the_readme_test_command():
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == [readme_test_command()]
    assert "pip install -r requirements-dev.txt" in ci[0] and "fonts-lohit-deva" in ci[0]  # Marathi in the browser test
