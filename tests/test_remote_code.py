"""The code saved with the weights, used as a Hub user uses it: in a fresh process that cannot import this project, so
that only the remote code in the folder runs. Checkpoints of a training run load through the three Auto classes and
give the logits of the project's own classes; the folder's pipelines work, "translation" among them."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ENGLISH, MARATHI, tiny_train_args
from transformers import AutoTokenizer

import train
from modeling_multitask import (
    MultitaskBertForConditionalGeneration,
    MultitaskBertForSequenceClassification,
    MultitaskBertModel,
)
from multitask_bert.build import save_model


def run_fresh(code: str, cwd, *arguments: str) -> str:
    """Run `code` in a new interpreter in `cwd`, with no PYTHONPATH, offline, with its own remote-code cache; return
    its standard output. It fails if the project's modules are importable there."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(cwd / "modules"), OMP_NUM_THREADS="1")
    guard = (
        "import importlib.util, sys\n"
        "for name in ('modeling_multitask', 'configuration_multitask', 'pipeline_multitask', 'multitask_bert'):\n"
        "    assert importlib.util.find_spec(name) is None, f'{name} is importable: remote code would not run'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", guard + code, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


# ---- checkpoints of a training run ---------------------------------------------------------------------------------

LOAD_CHECKPOINT = """
import json, sys
import torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

folder, inputs, out = sys.argv[1:]
inputs = torch.load(inputs)
encoder = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
logits, classes = {}, {}
with torch.no_grad():
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    logits["model.sentiment_logits"] = model(**encoder).sentiment_logits
    logits["model.logits"] = model(**encoder, decoder_input_ids=inputs["decoder_input_ids"]).logits
    classify = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    logits["classify.logits"] = classify(**encoder).logits
    translate = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
    logits["translate.logits"] = translate(**encoder, decoder_input_ids=inputs["decoder_input_ids"]).logits
    logits["translate.generate"] = translate.generate(**encoder, num_beams=2, max_new_tokens=5)
for name, m in (("model", model), ("classify", classify), ("translate", translate)):
    classes[name] = [type(m).__name__, type(m).__module__]
torch.save(logits, out)
print(json.dumps(classes))
"""


@pytest.fixture(scope="module")
def checkpoint(tiny_bert_dir, tmp_path_factory):
    """checkpoint-N of a tiny training run that saves every 2 steps."""
    out = tmp_path_factory.mktemp("run") / "model"
    steps = ["--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no"]
    train.main(tiny_train_args(tiny_bert_dir, out, *steps, "--load_best_model_at_end", "false"))
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, f"no checkpoint in {sorted(os.listdir(out))}"
    return checkpoints[-1]


@pytest.fixture(scope="module")
def remote_logits(checkpoint, tmp_path_factory):
    """(inputs, logits and generations of the checkpoint loaded as remote code in a fresh process, its classes)."""
    cwd = tmp_path_factory.mktemp("fresh")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=True)
    inputs = dict(tokenizer(ENGLISH, padding=True, return_tensors="pt"))
    inputs["decoder_input_ids"] = tokenizer(text_target=MARATHI, padding=True, return_tensors="pt")["input_ids"]
    torch.save(inputs, cwd / "inputs.pt")
    classes = json.loads(run_fresh(LOAD_CHECKPOINT, cwd, str(checkpoint), "inputs.pt", "logits.pt").splitlines()[-1])
    return inputs, torch.load(cwd / "logits.pt"), classes


def test_checkpoint_loads_through_the_three_auto_classes_as_remote_code(checkpoint, remote_logits):
    assert {"modeling_multitask.py", "configuration_multitask.py", "pipeline_multitask.py"} <= set(
        os.listdir(checkpoint)
    )
    _, logits, classes = remote_logits
    assert classes["model"][0] == "MultitaskBertModel"
    assert classes["classify"][0] == "MultitaskBertForSequenceClassification"
    assert classes["translate"][0] == "MultitaskBertForConditionalGeneration"
    assert all(module.startswith("transformers_modules.") for _, module in classes.values())
    assert logits["classify.logits"].shape == (len(ENGLISH), 2)


def test_remote_code_and_the_project_give_identical_logits(checkpoint, remote_logits):
    inputs, remote, _ = remote_logits
    encoder = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    decoder = inputs["decoder_input_ids"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the fresh process: the same kernels, the same sums
    try:
        with torch.no_grad():
            model = MultitaskBertModel.from_pretrained(checkpoint).eval()
            local = {
                "model.sentiment_logits": model(**encoder).sentiment_logits,
                "model.logits": model(**encoder, decoder_input_ids=decoder).logits,
            }
            classify = MultitaskBertForSequenceClassification.from_pretrained(checkpoint).eval()
            local["classify.logits"] = classify(**encoder).logits
            translate = MultitaskBertForConditionalGeneration.from_pretrained(checkpoint).eval()
            local["translate.logits"] = translate(**encoder, decoder_input_ids=decoder).logits
            local["translate.generate"] = translate.generate(**encoder, num_beams=2, max_new_tokens=5)
    finally:
        torch.set_num_threads(threads)
    assert type(model).__module__ == "modeling_multitask"  # the checkout's class, not the folder's copy
    assert set(local) == set(remote)
    for name, tensor in local.items():
        assert torch.equal(tensor, remote[name]), f"{name}: max abs diff {(tensor - remote[name]).abs().max()}"


# ---- pipelines -----------------------------------------------------------------------------------------------------

PIPELINES = """
import json, sys
from transformers import pipeline

folder, texts = sys.argv[1], json.loads(sys.argv[2])
settings = {"num_beams": 2, "max_new_tokens": 6}
out = {}
translate = pipeline("translation", model=folder, trust_remote_code=True)
out["translation_class"] = [type(translate).__name__, type(translate).__module__]
out["one"] = translate(texts[0], **settings)
out["each"] = [translate(text, **settings) for text in texts]
out["batch"] = translate(texts, batch_size=2, **settings)
out["batch_two_each"] = translate(texts[:2], num_return_sequences=2, **settings)
out["one_two"] = translate(texts[0], num_return_sequences=2, **settings)
out["en_to_mr"] = pipeline("translation_en_to_mr", model=folder, trust_remote_code=True)(texts[0], **settings)
try:
    translate(texts[0], num_beams=0)
except ValueError as err:
    out["num_beams_0"] = str(err)
both = pipeline(model=folder, trust_remote_code=True)
out["both_class"] = type(both).__name__
out["both"] = both(texts[0], **settings)
classify = pipeline("text-classification", model=folder, trust_remote_code=True)
out["classify_class"] = [type(classify).__name__, type(classify).__module__]
out["classify"] = classify(texts[0])
print(json.dumps(out, ensure_ascii=False))
"""


@pytest.fixture(scope="module")
def pipelines(tiny_tokenizer, tmp_path_factory):
    """What the folder's pipelines return in a fresh process, and the model they load."""
    from conftest import tiny_config

    torch.manual_seed(0)
    model = MultitaskBertModel(tiny_config(len(tiny_tokenizer))).eval()
    folder = tmp_path_factory.mktemp("saved") / "model"
    save_model(model, tiny_tokenizer, folder)
    out = run_fresh(PIPELINES, tmp_path_factory.mktemp("fresh"), str(folder), json.dumps(ENGLISH))
    return json.loads(out.splitlines()[-1]), model, folder


def expected_translation(model, tokenizer, text: str, **generate) -> list[str]:
    with torch.no_grad():
        ids = model.generate(**tokenizer(text, return_tensors="pt"), num_beams=2, max_new_tokens=6, **generate)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]


def test_translation_pipeline_answers_as_transformers_4(pipelines, tiny_tokenizer):
    out, model, _ = pipelines
    assert out["translation_class"][0] == "TranslationPipeline"
    assert out["translation_class"][1].startswith("transformers_modules.")
    # one text -> a list of one {"translation_text"} per returned sequence
    assert out["one"] == [{"translation_text": expected_translation(model, tiny_tokenizer, ENGLISH[0])[0]}]
    assert out["one_two"] == [
        {"translation_text": text}
        for text in expected_translation(model, tiny_tokenizer, ENGLISH[0], num_return_sequences=2)
    ]
    # a list of texts -> one dict per text (as transformers 4 flattened it), batched as given one by one
    assert out["batch"] == [each[0] for each in out["each"]] and len(out["batch"]) == len(ENGLISH)
    # ... and one list per text when each has several
    assert [len(each) for each in out["batch_two_each"]] == [2, 2]
    assert out["batch_two_each"][0] == out["one_two"]
    assert out["en_to_mr"] == out["one"]
    assert "num_beams must be a whole number of at least 1, got 0" in out["num_beams_0"]


def test_inferred_pipeline_and_text_classification_are_unchanged(pipelines):
    out, model, folder = pipelines
    assert out["both_class"] == "MultitaskPipeline"
    assert set(out["both"]) == {"label", "score", "translation"}
    assert out["both"]["translation"] == out["one"][0]["translation_text"]
    assert out["classify_class"] == ["TextClassificationPipeline", "transformers.pipelines.text_classification"]
    assert out["classify"][0]["label"] == out["both"]["label"]
    assert out["classify"][0]["score"] == pytest.approx(out["both"]["score"], abs=1e-6)
    # the saved config names one custom pipeline, which transformers needs to infer the task
    assert list(json.loads((folder / "config.json").read_text())["custom_pipelines"]) == ["multitask-bert"]
