"""The demo page in a real headless browser (Debian's chromium driven by Playwright): the Space folder space.py
writes, run on its own, as a visitor uses it: type, submit, read both results, see Marathi."""

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import gradio as gr
import pytest
from conftest import ENGLISH, free_port
from playwright.sync_api import sync_playwright
from test_space import requirement_names, run_with_only
from transformers import AutoModel, AutoTokenizer, pipeline

import app
from multitask_bert.card import WIDGET_TEXTS, record_widget_outputs
from multitask_bert.space import write_space

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
# Gradio veils outputs while a request runs and fades the veil out after: settled when every veil is transparent.
SETTLED = """() => [...document.querySelectorAll("[data-testid=status-tracker]")]
  .every((veil) => veil.classList.contains("hide") && getComputedStyle(veil).opacity === "0")"""
# Whether the translation's font shapes Devanagari: a font that has it joins क + ् + ष into the conjunct क्ष, narrower
# than the three apart; missing glyphs (boxes) keep the three widths.
SHAPES_DEVANAGARI = """() => {
  const context = document.createElement("canvas").getContext("2d");
  context.font = getComputedStyle(document.querySelector("#translation textarea")).font;
  const width = (text) => context.measureText(text).width;
  return width("क्ष") < width("क") + width("्") + width("ष") - 1;
}"""


@pytest.fixture
def app_url(saved, tmp_path):
    """The Space folder of a saved tiny model, its app.py serving from there with the project off the path and only
    what a Space has importable: its requirements.txt, gradio (the SDK) and their dependencies."""
    folder = write_space(str(saved), tmp_path / "space")
    port = free_port()
    packages = requirement_names(folder / "requirements.txt") | {"gradio"}
    code = (
        f"import runpy, sys\nsys.argv = ['app.py', '--port', '{port}']\nrunpy.run_path('app.py', run_name='__main__')"
    )
    server = run_with_only(
        packages,
        code,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"the demo did not start: {server.stdout.read()[-3000:]}")
            time.sleep(0.5)
    yield url, saved
    server.terminate()
    server.wait(timeout=30)


def test_type_submit_and_read_both_results(app_url, tmp_path):
    assert shutil.which(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    fonts = subprocess.run(["fc-list", ":lang=mr"], capture_output=True, text=True).stdout
    assert fonts.strip(), "a Devanagari font is needed for Marathi: apt-get install fonts-lohit-deva"
    url, model = app_url
    pipe = pipeline(model=str(model), trust_remote_code=True)
    expected = pipe(ENGLISH[0], num_beams=4, max_new_tokens=64)
    probabilities = app.class_probabilities(pipe(ENGLISH[0], tasks="sentiment", top_k=None))
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(  # a fresh --user-data-dir
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1100, "height": 700},
        )
        page = browser.new_page()
        page.goto(url)
        page.locator("#english textarea").fill(ENGLISH[0])
        page.locator("#analyse").click()
        page.wait_for_function("() => document.querySelector('#translation textarea').value !== ''", timeout=60_000)
        page.wait_for_function(SETTLED, timeout=10_000)  # the screenshot shows the results, not the fading veil
        top = page.locator("#sentiment [data-testid='label-output-value']").inner_text()
        rows = {
            label: page.locator(f"#sentiment [data-testid='{label}-confidence-set'] dd").inner_text()
            for label in probabilities
        }
        shown_translation = page.locator("#translation textarea").input_value()
        shapes = page.evaluate(SHAPES_DEVANAGARI)
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        browser.close()
    assert top == expected["label"] and probabilities[expected["label"]] == pytest.approx(expected["score"])
    assert rows == {label: f"{round(100 * p)}%" for label, p in probabilities.items()}  # both classes, in percent
    assert shown_translation == expected["translation"]
    assert shapes, "the translation's font does not render Devanagari"


def test_address_from_flags_then_environment_then_loopback(capsys):
    args = app.parse_args([], environ={}, settings={})
    assert (args.host, args.port, args.model, args.revision) == ("127.0.0.1", 7860, app.DEFAULT_MODEL, None)
    assert (Path(app.DEFAULT_MODEL) / "config.json").is_file(), "the shipped reference model is the page's default"
    space = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861", "MODEL": "you/m", "MODEL_REVISION": "abc"}
    args = app.parse_args([], environ=space, settings={"model": "you/other", "revision": "def"})
    assert (args.host, args.port, args.model, args.revision) == ("0.0.0.0", 7861, "you/m", "abc")
    args = app.parse_args(["--host", "127.0.0.1", "--port", "8000"], environ={**space, "GRADIO_SERVER_PORT": "x"})
    assert (args.host, args.port) == ("127.0.0.1", 8000)  # a flag wins, and a bad variable it overrides is not read
    assert app.parse_args([], environ={"PORT": "9000"}).port == 9000
    for argv, environ, message in [
        ([], {"GRADIO_SERVER_PORT": "http"}, "environment variable GRADIO_SERVER_PORT: not a port number"),
        (["--port", "70000"], {}, "not a port number (1-65535): '70000'"),
        (["--num_beams", "0"], {}, "--num_beams: must be a whole number of at least 1, got '0'"),
        (["--max_new_tokens", "-1"], {}, "--max_new_tokens: must be a whole number of at least 1"),
    ]:
        with pytest.raises(SystemExit):
            app.parse_args(argv, environ=environ)
        assert message in capsys.readouterr().err


def test_model_from_flag_then_variable_then_space_settings(tmp_path, capsys):
    settings = {"model": "you/space-model", "revision": "c0ffee"}  # what space.py writes into a Space folder
    args = app.parse_args([], environ={}, settings=settings)
    assert (args.model, args.revision) == ("you/space-model", "c0ffee")
    args = app.parse_args([], environ={"MODEL_REVISION": "newer"}, settings=settings)
    assert (args.model, args.revision) == ("you/space-model", "newer")  # a Space variable re-pins the same model
    args = app.parse_args([], environ={"MODEL": "you/other"}, settings=settings)
    assert (args.model, args.revision) == ("you/other", None)  # another model: not the settings' commit
    args = app.parse_args(["--model", "folder"], environ={"MODEL_REVISION": "x"}, settings=settings)
    assert (args.model, args.revision) == ("folder", None)
    assert app.read_settings(tmp_path / "none.json") == {}
    (tmp_path / "space_config.json").write_text(json.dumps(settings))
    assert app.read_settings(tmp_path / "space_config.json") == settings
    (tmp_path / "space_config.json").write_text("{not json")
    with pytest.raises(SystemExit, match="space_config.json .*: write the Space folder again with space.py"):
        app.read_settings(tmp_path / "space_config.json")


def test_handler_caps_the_text_before_the_model_runs():
    calls = []

    def fake_pipe(text, **kwargs):
        calls.append((text, kwargs))
        scores = [{"label": "positive", "score": 0.75}, {"label": "negative", "score": 0.25}]
        return {"label": "positive", "score": 0.75, "scores": scores, "translation": "x"}

    analyse = app.make_analyse(fake_pipe, num_beams=2, max_new_tokens=8, max_chars=10)
    assert analyse("0123456789") == ({"positive": 0.75, "negative": 0.25}, "x")
    with pytest.raises(gr.Error, match="The text has 11 characters; this demo takes at most 10"):
        analyse("0123456789a")
    with pytest.raises(gr.Error, match="Type an English sentence first"):
        analyse("  ")
    # one pipeline call per request: every class's probability and the translation from one encoder pass
    assert calls == [("0123456789", {"top_k": None, "num_beams": 2, "max_new_tokens": 8})]
    app.make_analyse(fake_pipe, num_beams=None, max_new_tokens=8, max_chars=10)("hi")
    assert calls[-1] == ("hi", {"top_k": None, "max_new_tokens": 8})  # the model's own beams
    with pytest.raises(ValueError, match="num_beams must be at least 1, got 0"):
        app.build_demo("no-such-model-folder", num_beams=0)  # refused before the model is looked for


def test_a_lora_runs_folder_is_refused_before_the_model_loads(saved, monkeypatch):
    (saved / "translation").mkdir()  # a LoRA run's folder: the frozen base, and one folder per task's adapter
    (saved / "translation" / "adapter_config.json").write_text("{}")
    monkeypatch.setattr(app, "pipeline", lambda **kwargs: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match=r"holds LoRA adapters \(translation\): the demo page runs plain models"):
        app.build_demo(str(saved))


def test_the_cards_widget_shows_what_the_page_answers(saved):
    """The card records the widget's answers with the page's settings: its 64-token cap and the model's own beams (a
    greedy model here), not a beam count of the card's own."""
    settings = json.loads((saved / "generation_config.json").read_text())
    (saved / "generation_config.json").write_text(json.dumps({**settings, "num_beams": 1}))
    model = AutoModel.from_pretrained(saved, trust_remote_code=True)
    recorded = record_widget_outputs(model, AutoTokenizer.from_pretrained(saved))
    analyse = app.make_analyse(pipeline(model=str(saved), trust_remote_code=True), None, 64, app.MAX_CHARS)
    assert [r["translation"] for r in recorded] == [analyse(text)[1] for text in WIDGET_TEXTS]
    beamed = pipeline(model=str(saved), trust_remote_code=True)(WIDGET_TEXTS, num_beams=4, max_new_tokens=64)
    assert [r["translation"] for r in recorded] != [r["translation"] for r in beamed]  # the beams make a difference


def test_a_revision_beside_a_local_folder_is_refused_before_the_model_loads(saved, monkeypatch):
    """The page would show the folder as pinned to a commit the pipeline never used."""
    monkeypatch.setattr(app, "pipeline", lambda **kwargs: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match="a revision pins a Hub commit, and .* is a local folder"):
        app.build_demo(str(saved), revision="abc123")


def test_a_translation_longer_than_the_decoder_takes_is_refused_before_the_page_starts(saved):
    with pytest.raises(ValueError, match="max_new_tokens 65 is more than the decoder's 64 positions"):
        app.build_demo(str(saved), max_new_tokens=65)


def test_page_caps_the_textbox(saved):
    assert app.MAX_CHARS == 2000
    demo = app.build_demo(str(saved), max_chars=50)
    blocks = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}
    assert blocks["english"].max_length == 50
    assert isinstance(blocks["sentiment"], gr.Label) and blocks["sentiment"].num_top_classes is None  # every class
    assert isinstance(blocks["translation"], gr.Textbox) and blocks["translation"].interactive is False
