"""Several processes (torchrun, 2 CPU processes over gloo) and a run killed with SIGKILL then resumed."""

import json
import os
import subprocess
import sys

import torch
from conftest import PROJECT_ENV, ROOT, free_port, resume_train_args, tiny_train_args
from safetensors.torch import load_file
from transformers import AutoModel


def run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=PROJECT_ENV, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def torchrun(*args: str) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    return run([*launcher, "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *args], timeout=300)


def test_two_ranks_get_different_one_task_batches(tiny_bert_dir, tmp_path):
    done = torchrun("tests/ddp_batches.py", str(tiny_bert_dir), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) > 0
    pad = 1  # <pad> of the XLM-R vocabulary
    rows = [{tuple(t for t in row if t != pad) for _, ids in batches for row in ids} for batches in ranks]
    assert not rows[0] & rows[1]  # different data on each rank
    assert len(rows[0] | rows[1]) == 32  # and together one pass over the 16 + 16 examples
    for batches in ranks:
        assert {task for task, _ in batches} <= {"sentiment", "translation"}


def test_train_script_under_torchrun(tiny_bert_dir, tmp_path):
    out = tmp_path / "ddp"
    done = torchrun("train.py", *tiny_train_args(tiny_bert_dir, out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ddp_find_unused_parameters" not in done.stderr  # no DDP complaint about the unused head
    state = json.loads((out / "trainer_state.json").read_text())
    assert any("loss_sentiment" in h for h in state["log_history"])
    assert any("loss_translation" in h for h in state["log_history"])
    checkpoints = [d for d in os.listdir(out) if d.startswith("checkpoint-")]
    assert len(checkpoints) == 1  # written once, not once per rank
    AutoModel.from_pretrained(out, trust_remote_code=True)
    assert json.loads((out / "eval_results.json").read_text())["eval_sentiment_validation_accuracy"] >= 0


def test_killed_run_resumes_to_the_same_weights(tiny_bert_dir, tmp_path):
    # the kill comes after step 9, inside epoch 2
    straight = run([sys.executable, "train.py", *resume_train_args(tiny_bert_dir, tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    killed = run([sys.executable, "tests/kill_after_save.py", "9", *resume_train_args(tiny_bert_dir, killed_dir)])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (killed_dir / "model.safetensors").exists()  # it really died mid-way
    resume = ["--resume_from_checkpoint", str(killed_dir / "checkpoint-9")]
    resumed = run([sys.executable, "train.py", *resume_train_args(tiny_bert_dir, killed_dir, *resume)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(killed_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=1e-5, msg=key)
    # and the resumed run really continued: its weights differ from the checkpoint it started from
    start = load_file(killed_dir / "checkpoint-9" / "model.safetensors")
    assert any(not torch.equal(start[k], b[k]) for k in start)
