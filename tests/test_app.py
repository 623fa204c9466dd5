"""The demo page in a real headless browser (Debian's chromium driven by Playwright): type, submit, read."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import gradio as gr
import pytest
from conftest import ENGLISH, ROOT
from playwright.sync_api import sync_playwright
from transformers import pipeline

import app
from build_model import save_model

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tiny_model, tiny_tokenizer, tmp_path):
    save_model(tiny_model, tiny_tokenizer, tmp_path / "model")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "app.py", "--model", str(tmp_path / "model"), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
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
    yield url, tmp_path / "model"
    server.terminate()
    server.wait(timeout=30)


def test_type_submit_and_read_both_results(app_url, tmp_path):
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    url, model = app_url
    expected = pipeline(model=str(model), trust_remote_code=True)(ENGLISH[0], num_beams=4, max_new_tokens=64)
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(  # a fresh --user-data-dir
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        page = browser.new_page()
        page.goto(url)
        page.locator("#english textarea").fill(ENGLISH[0])
        page.locator("#analyse").click()
        sentiment = page.locator("#sentiment textarea")
        page.wait_for_function("() => document.querySelector('#sentiment textarea').value !== ''", timeout=60_000)
        shown_sentiment = sentiment.input_value()
        shown_translation = page.locator("#translation textarea").input_value()
        page.screenshot(path=str(tmp_path / "demo.png"))
        browser.close()
    assert shown_sentiment == f"{expected['label']} ({expected['score']:.2f})"
    assert shown_translation == expected["translation"]


def test_address_from_flags_then_environment_then_loopback(capsys):
    args = app.parse_args([], environ={})
    assert (args.host, args.port, args.model, args.revision) == ("127.0.0.1", 7860, "outputs/multitask-bert", None)
    space = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861", "MODEL": "you/m", "MODEL_REVISION": "abc"}
    args = app.parse_args([], environ=space)
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


def test_handler_caps_the_text_before_the_model_runs():
    calls = []

    def fake_pipe(text, **kwargs):
        calls.append((text, kwargs))
        return {"label": "positive", "score": 0.5, "translation": "x"}

    analyse = app.make_analyse(fake_pipe, num_beams=2, max_new_tokens=8, max_chars=10)
    assert analyse("0123456789") == ("positive (0.50)", "x")
    with pytest.raises(gr.Error, match="The text has 11 characters; this demo takes at most 10"):
        analyse("0123456789a")
    with pytest.raises(gr.Error, match="Type an English sentence first"):
        analyse("  ")
    assert calls == [("0123456789", {"num_beams": 2, "max_new_tokens": 8})]
    with pytest.raises(ValueError, match="num_beams must be at least 1, got 0"):
        app.build_demo("no-such-model-folder", num_beams=0)  # refused before the model is looked for


def test_page_caps_the_textbox(tiny_model, tiny_tokenizer, tmp_path):
    save_model(tiny_model, tiny_tokenizer, tmp_path / "model")
    assert app.MAX_CHARS == 2000
    demo = app.build_demo(str(tmp_path / "model"), max_chars=50)
    (box,) = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "english"]
    assert box.max_length == 50
