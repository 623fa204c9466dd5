"""Main job. Until joint fine-tuning lands (see the issues), it builds the multi-task model from the base weights,
saves a complete Hub-ready folder and runs both heads on a few sentences.

    python train.py                                   # embedded multilingual-e5-small, offline
    python train.py --base_model google-bert/bert-base-multilingual-cased --decoder_layers 6 --output_dir out
"""

import logging
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser

from build_model import EMBEDDED_BASE, build_multitask_model, save_model

logger = logging.getLogger("train")

DEMO_SENTENCES = ["The film was wonderful.", "A dull, lifeless script.", "Where is the railway station?"]


@dataclass
class ModelArguments:
    base_model: str = field(
        default=EMBEDDED_BASE, metadata={"help": "BERT checkpoint: Hub id, local folder or the embedded default"}
    )
    decoder_layers: int | None = field(default=None, metadata={"help": "decoder depth; the encoder's by default"})
    output_dir: str = field(default="outputs/multitask-bert", metadata={"help": "where the model folder is written"})


def try_both_heads(model, tokenizer, sentences: list[str]) -> None:
    batch = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**batch).sentiment_logits.softmax(-1)
        generated = model.generate(**batch, num_beams=2, max_new_tokens=16)
    for sentence, p, marathi in zip(sentences, probs, tokenizer.batch_decode(generated, skip_special_tokens=True)):
        label = model.config.id2label[int(p.argmax())]
        print(f"{sentence!r}: {label} ({float(p.max()):.2f}) | {marathi!r}")


def main():
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(ModelArguments).parse_args_into_dataclasses()
    model, tokenizer = build_multitask_model(args.base_model, decoder_layers=args.decoder_layers)
    save_model(model, tokenizer, args.output_dir)
    logger.info("Saved the model, its code and its tokenizer to %s", args.output_dir)
    print("Untrained heads (fresh sentiment classifier and cross-attention): outputs are not meaningful yet.")
    try_both_heads(model.eval(), tokenizer, DEMO_SENTENCES)


if __name__ == "__main__":
    main()
