"""predict.py under faults: bad rows keep their place, bad files and settings stop it before the model is loaded,
the input is never overwritten, a folder without its tokenizer is refused, a killed run keeps the old output."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ENGLISH, ROOT, write_jsonl
from transformers import GenerationConfig, pipeline

import predict

FAST = ["--num_beams", "1", "--max_new_tokens", "2", "--batch_size", "2"]
NO_MODEL = "no-such-model-folder"  # loading it would fail: an error about the input proves the model was never loaded
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def records(path) -> list[dict]:
    """The output's rows, split on "\\n" only; every line must be whole JSON."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "the last line is cut"
    return [json.loads(line) for line in text.split("\n")[:-1]]


def run(model, source, out, *extra) -> int:
    return predict.main(["--model", str(model), "--input", str(source), "--output", str(out), *FAST, *extra])


def test_output_that_is_the_input_is_refused(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "the film was great"}\n')
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    for output in (source, tmp_path / "link.jsonl", tmp_path / "hard.jsonl", tmp_path / "." / "in.jsonl"):
        with pytest.raises(ValueError, match="is the input file"):
            run(NO_MODEL, source, output)
        assert source.read_text() == '{"text": "the film was great"}\n'


def test_a_lora_runs_folder_is_refused_before_the_model_loads(saved, tmp_path):
    (saved / "sentiment").mkdir()  # a LoRA run's folder: the frozen base, and one folder per task's adapter
    (saved / "sentiment" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"holds LoRA adapters \(sentiment\): predict.py runs plain models, and"):
        predict.main(["--model", str(saved), "--text", "hello", "--output", str(tmp_path / "out.jsonl")])
    assert not (tmp_path / "out.jsonl").exists()


def test_a_model_that_is_no_multitask_folder_is_refused_by_name(saved, tiny_bert_dir, tmp_path):
    """A path that is not there, a folder without a model, another architecture's folder, a revision beside a folder
    (it pins Hub commits only): each said before any weight loads, instead of the Hub's repo-id message or a
    traceback. A Hub id that does not load says both where it was looked for."""
    cases = [
        ([str(tmp_path / "missing")], f"{tmp_path / 'missing'}: no such folder"),
        ([str(tmp_path)], f"{tmp_path} holds no saved model \\(no config.json\\)"),
        ([str(tiny_bert_dir)], "is not a multitask-bert model \\(its config.json is a bert model's\\)"),
        (
            [str(saved), "--revision", "abc123"],
            "--revision pins a Hub commit, and .* is a local folder: drop --revision",
        ),
    ]
    for model, message in cases:
        with pytest.raises((ValueError, OSError), match=message):
            predict.main(["--model", *model, "--text", "hello"])
    env = {**ENV, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "predict.py", "--model", "nobody/no-model", "--text", "hi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--model nobody/no-model is not a folder here, and loading it from the Hub failed" in done.stderr


def test_a_text_column_beside_text_is_refused():
    """--text_column names an --input file's column: beside --text it would be accepted and have no effect."""
    with pytest.raises(ValueError, match="--text_column names the column of an --input file"):
        predict.main(["--model", NO_MODEL, "--text", "hello", "--text_column", "review"])


@pytest.mark.parametrize("setting", ["--num_beams", "--max_new_tokens", "--batch_size"])
def test_senseless_settings_are_refused_before_any_work(tmp_path, setting):
    with pytest.raises(ValueError, match=f"{setting[2:]} must be at least 1, got 0"):
        predict.main(["--model", NO_MODEL, "--text", "hello", setting, "0"])


@pytest.mark.parametrize(
    "name, content, error, message",
    [
        ("missing.jsonl", None, FileNotFoundError, "does not exist"),
        ("folder.jsonl", "folder", IsADirectoryError, "is a folder"),
        ("header.csv", "text\n", ValueError, "has a header line but no rows"),
        ("empty.jsonl", "", ValueError, "is empty"),
        ("words.txt", "text\nhello\n", ValueError, "is not a .csv, .tsv, .json or .jsonl file"),
        (
            "other.tsv",
            "review\nhello\n",
            ValueError,
            r"has no column 'text' \(columns: 'review'\): name yours with --text_column",
        ),
    ],
)
def test_bad_input_files_stop_before_the_model_is_loaded(tmp_path, name, content, error, message):
    source = tmp_path / name
    if content == "folder":
        source.mkdir()
    elif content is not None:
        source.write_text(content)
    with pytest.raises(error, match=message) as info:
        run(NO_MODEL, source, tmp_path / "out.jsonl")
    assert str(source) in str(info.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_tsv_quotes_and_jsonl_line_separators_keep_one_row_per_line(saved, tmp_path):
    tsv = tmp_path / "in.tsv"
    tsv.write_text('text\n"the film was great\nwhere is the station?"\n', encoding="utf-8")
    assert run(saved, tsv, tmp_path / "tsv.jsonl") == 0
    assert [r["text"] for r in records(tmp_path / "tsv.jsonl")] == ['"the film was great', 'where is the station?"']
    texts = ["the film\u2028was great", "a dull\u2029script", "where\x85is the station?"]
    jsonl = tmp_path / "in.jsonl"
    write_jsonl(jsonl, [{"text": t} for t in texts])
    assert run(saved, jsonl, tmp_path / "out.jsonl") == 0
    out = records(tmp_path / "out.jsonl")
    assert [r["row"] for r in out] == [0, 1, 2] and [r["text"] for r in out] == texts
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 3  # escaped in the output too


def test_bad_rows_are_reported_in_place_and_the_run_goes_on(saved, tmp_path):
    jsonl = tmp_path / "in.jsonl"
    too_long = json.dumps({"text": "the film " * 40}).encode()
    lines = [b'{"text": "the film was great"}', b'{"text": "bad \xff byte"}', b"{broken", b"", b'{"other": 1}']
    lines += [b'{"text": "   "}', too_long, b'{"text": "where is the station?"}']
    jsonl.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    assert run(saved, jsonl, tmp_path / "out.jsonl") == 6
    out = records(tmp_path / "out.jsonl")
    assert [r["row"] for r in out] == list(range(8)) and [r.get("line") for r in out[1:7]] == [2, 3, 4, 5, 6, 7]
    assert "label" in out[0] and "label" in out[7]
    assert out[1]["error"] == "invalid UTF-8 byte 0xff at column 15"
    assert out[2]["error"].startswith("not JSON: Expecting property name")
    assert out[3]["error"] == "empty line"
    assert out[4]["error"] == "no field 'text'"
    assert out[5]["error"] == "empty text"
    assert out[6]["error"].startswith("too long:")
    csv = tmp_path / "in.csv"
    csv.write_bytes(b'\xef\xbb\xbftext,label\n"the film, great",1\nwhere is the station?,0\nextra,1,2\n')
    assert run(saved, csv, tmp_path / "csv.jsonl") == 1  # the byte-order mark is not part of the column name
    out = records(tmp_path / "csv.jsonl")
    assert out[0]["text"] == "the film, great" and "label" in out[1]
    assert out[2] == {"row": 2, "line": 4, "error": "3 field(s) where the header has 2"}


class StopsAfter:
    """The real pipeline, stopped (as by an error or Ctrl-C) after `calls` batches."""

    def __init__(self, pipe, calls: int):
        self.pipe, self.tokenizer, self.model, self.left = pipe, pipe.tokenizer, pipe.model, calls

    def __call__(self, *args, **kwargs):
        if self.left == 0:
            raise RuntimeError("stopped")
        self.left -= 1
        return self.pipe(*args, **kwargs)


def test_output_is_replaced_only_when_complete(saved, tmp_path, monkeypatch, capsys):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"text": t} for t in [ENGLISH[0], "", *ENGLISH]])
    out.write_text("old predictions\n")
    real = pipeline(model=str(saved), trust_remote_code=True)
    monkeypatch.setattr(predict, "pipeline", lambda **kwargs: StopsAfter(real, calls=1))
    with pytest.raises(RuntimeError, match="stopped") as info:
        run(saved, source, out)
    assert out.read_text() == "old predictions\n"
    (partial,) = tmp_path.glob(".out.jsonl.partial-*")
    assert [r["row"] for r in records(partial)] == [0, 1, 2]  # the first batch of two, and the error row between
    assert str(partial) in capsys.readouterr().err and str(partial) in "\n".join(info.value.__notes__)
    partial.unlink()
    monkeypatch.setattr(predict, "pipeline", lambda **kwargs: real)
    assert run(saved, source, out) == 1
    assert [r["row"] for r in records(out)] == [0, 1, 2, 3, 4] and not list(tmp_path.glob(".out.jsonl.partial-*"))


def test_exit_status_and_summary(saved, tmp_path, capsys):
    (tmp_path / "good.jsonl").write_text(json.dumps({"text": ENGLISH[0]}) + "\n")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": ENGLISH[0]}) + "\n\n")
    base = ["--model", str(saved), *FAST, "--task", "sentiment", "--input"]
    assert predict.cli([*base, str(tmp_path / "good.jsonl"), "--output", str(tmp_path / "o.jsonl")]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"Wrote 1 row(s) to {tmp_path / 'o.jsonl'}: 0 with an error"
    assert predict.cli([*base, str(tmp_path / "bad.jsonl")]) == 1
    captured = capsys.readouterr()
    assert [json.loads(line)["row"] for line in captured.out.splitlines()] == [0, 1]
    err = captured.err.splitlines()
    assert err[-2] == f"row 1 ({tmp_path / 'bad.jsonl'}, line 2): empty line"
    assert err[-1] == "Wrote 2 row(s) to standard output: 1 with an error"
    assert predict.cli([*base, str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl does not exist" in capsys.readouterr().err


def without_tokenizer(saved, folder, *names):
    shutil.copytree(saved, folder)
    for name in names:
        (folder / name).unlink()
    return folder


def test_generation_settings_default_to_the_models_own(saved, capsys):
    config = GenerationConfig.from_pretrained(saved)
    config.num_beams, config.max_new_tokens = 1, 3  # the model's own defaults (a release's, say)
    config.save_pretrained(saved)

    def translation(*extra) -> str:
        assert predict.cli(["--model", str(saved), "--task", "translation", "--text", ENGLISH[0], *extra]) == 0
        return json.loads(capsys.readouterr().out)["translation"]

    assert translation() == translation("--num_beams", "1", "--max_new_tokens", "3")
    assert translation() != translation("--num_beams", "4", "--max_new_tokens", "30")  # settings that change it


def test_a_translation_longer_than_the_decoder_takes_is_refused_before_any_row(saved, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    argv = ["--model", str(saved), "--text", ENGLISH[0], "--output", str(out), "--max_new_tokens", "65"]
    assert predict.cli(argv) == 2
    assert "--max_new_tokens 65 is longer than the model's decoder takes (64 positions)" in capsys.readouterr().err
    assert not out.exists()


def test_an_unexpected_failure_exits_2_not_the_status_of_bad_rows(tmp_path, monkeypatch, capsys):
    def broken(**kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(predict, "pipeline", broken)
    assert predict.cli(["--text", "hello"]) == 2  # 1 would say that some rows have an error
    err = capsys.readouterr().err
    assert "RuntimeError: out of memory" in err and err.splitlines()[-1].startswith(
        "predict.py: error: the run stopped"
    )


def test_folder_without_its_tokenizer_is_refused(saved, tmp_path):
    stub = without_tokenizer(saved, tmp_path / "stub", "tokenizer.json")  # loads as a 5-token stub otherwise
    expected = (
        "the tokenizer has 5 tokens but model .* has a vocabulary of 141: the folder's tokenizer files are missing"
    )
    with pytest.raises(ValueError, match=expected):
        pipeline(model=str(stub), trust_remote_code=True)
    bare = without_tokenizer(saved, tmp_path / "bare", "tokenizer.json", "tokenizer_config.json")
    with pytest.raises(ValueError, match="no tokenizer could be loaded for model .*tokenizer files are missing"):
        pipeline(model=str(bare), trust_remote_code=True)
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "predict.py", "--model", str(stub), "--text", ENGLISH[0], "--output", str(out)]
    result = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "tokenizer files are missing" in result.stderr.splitlines()[-1]
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.partial-*"))


def test_killed_run_keeps_the_old_output_and_the_finished_rows(saved, tmp_path):
    texts = ["" if i % 7 == 3 else ENGLISH[i % 3] for i in range(400)]  # error rows between the predicted ones
    source, out, log = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "stderr.txt"
    write_jsonl(source, [{"text": t} for t in texts])
    out.write_text("old predictions\n")
    batch = 4
    command = [sys.executable, "predict.py", "--model", str(saved), "--input", str(source), "--output", str(out)]
    command += ["--batch_size", str(batch), "--num_beams", "4", "--max_new_tokens", "48"]  # slow enough to be caught
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            partial = wait_for_rows(tmp_path.glob, ".out.jsonl.partial-*", batch, process, log)
        finally:
            process.send_signal(signal.SIGKILL)  # no clean-up of any kind, as after a power cut
            process.wait(timeout=60)
    assert out.read_text() == "old predictions\n"
    rows = records(partial)
    assert batch <= len(rows) < len(texts)
    assert [r["row"] for r in rows] == list(range(len(rows)))
    assert [("error" in r) for r in rows] == [texts[i] == "" for i in range(len(rows))]
    assert str(partial) in log.read_text()  # the user is told where the finished rows are


def wait_for_rows(glob, pattern, n, process, log, timeout=240.0):
    """The temporary output file, once it holds at least `n` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(glob(pattern))
        if found and found[0].read_bytes().count(b"\n") >= n:
            return found[0]
        assert process.poll() is None, f"the run ended before it was killed: {log.read_text()[-3000:]}"
        time.sleep(0.01)
    pytest.fail(f"no {n} rows within {timeout} s: {log.read_text()[-3000:]}")
