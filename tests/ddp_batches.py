"""Under torchrun: write the training batches this rank gets from MultitaskTrainer's dataloader to a JSON file.

torchrun --nproc_per_node 2 tests/ddp_batches.py TINY_BERT_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from build_model import build_multitask_model  # noqa: E402
from data import DataArguments, load_task_data  # noqa: E402
from multitask_trainer import MultitaskCollator, MultitaskTrainer, MultitaskTrainingArguments  # noqa: E402
from sampling import MultitaskDataset  # noqa: E402

if __name__ == "__main__":
    base, out = sys.argv[1], Path(sys.argv[2])
    args = MultitaskTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=4,
        use_cpu=True,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    model, tokenizer = build_multitask_model(base, decoder_layers=1)
    with args.main_process_first():
        train_sets = load_task_data(DataArguments(max_train_samples=16), tokenizer, model.config.label2id).train
    trainer = MultitaskTrainer(
        model=model,
        args=args,
        train_dataset=MultitaskDataset(train_sets),
        data_collator=MultitaskCollator(tokenizer, model),
        processing_class=tokenizer,
    )
    batches = [(batch["task"], batch["input_ids"].tolist()) for batch in trainer.get_train_dataloader()]
    (out / f"rank{args.process_index}.json").write_text(json.dumps(batches))
