"""The demo page in a real headless browser (Debian's chromium driven by Playwright): type, submit, read."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ENGLISH, ROOT
from playwright.sync_api import sync_playwright
from transformers import pipeline

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
