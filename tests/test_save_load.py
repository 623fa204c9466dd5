"""One saved folder, three ways in: AutoModel, AutoModelForSequenceClassification, AutoModelForSeq2SeqLM."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ENGLISH, MARATHI
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline


def inputs(tokenizer):
    enc = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    labels = tokenizer(text_target=MARATHI, padding=True, return_tensors="pt")["input_ids"]
    return enc, labels


def test_folder_is_a_complete_hub_repository(saved):
    files = set(os.listdir(saved))
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= files
    assert {"configuration_multitask.py", "modeling_multitask.py", "pipeline_multitask.py"} <= files
    auto_map = json.loads((saved / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoModelForSeq2SeqLM"}
    generation = json.loads((saved / "generation_config.json").read_text())
    assert generation["decoder_start_token_id"] == 0 and generation["eos_token_id"] == 2
    assert generation["suppress_tokens"] == [0, 1]


def test_saved_tokenizer_file_cuts_nothing(tiny_model, tiny_tokenizer, tmp_path):
    from tokenizers import Tokenizer

    from multitask_bert.build import save_model

    tiny_tokenizer(ENGLISH, truncation=True, max_length=3, padding=True)  # leaves its settings in the backend
    save_model(tiny_model, tiny_tokenizer, tmp_path / "model")
    raw = Tokenizer.from_file(str(tmp_path / "model" / "tokenizer.json"))  # the tokenizers library, on its own
    assert raw.truncation is None and raw.padding is None
    assert len(raw.encode(" ".join(ENGLISH)).ids) > 3


def test_outputs_identical_after_save_load_through_each_auto_class(tiny_model, tiny_tokenizer, saved):
    enc, labels = inputs(tiny_tokenizer)
    with torch.no_grad():
        before = tiny_model(**enc, labels=labels)
        full = AutoModel.from_pretrained(saved, trust_remote_code=True).eval()(**enc, labels=labels)
        sentiment_before = tiny_model(**enc).sentiment_logits
        sentiment_full = AutoModel.from_pretrained(saved, trust_remote_code=True).eval()(**enc).sentiment_logits
        seqcls = AutoModelForSequenceClassification.from_pretrained(saved, trust_remote_code=True).eval()(**enc)
        seq2seq = AutoModelForSeq2SeqLM.from_pretrained(saved, trust_remote_code=True).eval()(**enc, labels=labels)
    assert torch.equal(full.logits, before.logits) and torch.equal(full.loss, before.loss)
    assert torch.equal(sentiment_full, sentiment_before)
    # the sentiment view's logits are the full model's sentiment logits, the translation view's its token logits
    assert torch.equal(seqcls.logits, sentiment_before)
    assert torch.equal(seq2seq.logits, before.logits) and torch.equal(seq2seq.loss, before.loss)


def test_generation_identical_after_save_load(tiny_model, tiny_tokenizer, saved):
    enc, _ = inputs(tiny_tokenizer)
    kwargs = dict(num_beams=2, max_new_tokens=6)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(saved, trust_remote_code=True).eval()
    assert torch.equal(loaded.generate(**enc, **kwargs), tiny_model.generate(**enc, **kwargs))


def test_text_classification_pipeline_names_the_classes(tiny_model, tiny_tokenizer, saved):
    classify = pipeline("text-classification", model=str(saved), trust_remote_code=True)
    results = classify(ENGLISH)
    with torch.no_grad():
        probs = tiny_model(**tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")).sentiment_logits.softmax(-1)
    for result, p in zip(results, probs):
        assert result["label"] == ["negative", "positive"][int(p.argmax())]
        assert result["score"] == pytest.approx(float(p.max()), abs=1e-5)


FRESH_PROCESS = textwrap.dedent(
    """
    import importlib.util, json, sys, torch
    assert importlib.util.find_spec("modeling_multitask") is None, "the project is on sys.path"
    from transformers import (AutoModel, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoTokenizer,
                              pipeline)
    path, texts = sys.argv[1], json.loads(sys.argv[2])
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        full = AutoModel.from_pretrained(path, trust_remote_code=True).eval()(**enc)
        seqcls = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()(**enc)
    gen = AutoModelForSeq2SeqLM.from_pretrained(path, trust_remote_code=True).eval()
    out = gen.generate(**enc, num_beams=2, max_new_tokens=5)
    labels = [r["label"] for r in pipeline("text-classification", model=path, trust_remote_code=True)(texts)]
    both = pipeline(model=path, trust_remote_code=True)(texts, num_beams=2, max_new_tokens=5)  # the custom pipeline
    print(json.dumps({"sentiment": full.sentiment_logits.tolist(), "seqcls": seqcls.logits.tolist(),
                      "generated": out.tolist(), "labels": labels, "module": type(gen).__module__,
                      "pipeline": both}))
    """
)


def test_loads_in_a_fresh_process_without_the_project(tiny_model, tiny_tokenizer, saved, tmp_path_factory):
    """The code really travels with the weights: no project on sys.path, another working directory, offline."""
    workdir = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(workdir / "hf_home"))
    run = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(saved), json.dumps(ENGLISH)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    enc = tiny_tokenizer(ENGLISH, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = tiny_model(**enc).sentiment_logits
    assert result["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(result["sentiment"]), expected, atol=1e-6, rtol=1e-6)
    assert result["seqcls"] == result["sentiment"]
    assert result["generated"] == tiny_model.generate(**enc, num_beams=2, max_new_tokens=5).tolist()
    assert result["labels"] == [["negative", "positive"][i] for i in expected.argmax(-1).tolist()]
    assert [r["label"] for r in result["pipeline"]] == result["labels"]
    translations = tiny_tokenizer.batch_decode(result["generated"], skip_special_tokens=True)
    assert [r["translation"] for r in result["pipeline"]] == [t.strip() for t in translations]
    assert (
        AutoTokenizer.from_pretrained(saved, trust_remote_code=True)(MARATHI[0])["input_ids"]
        == tiny_tokenizer(MARATHI[0])["input_ids"]
    )
