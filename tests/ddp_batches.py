"""Under torchrun: write the training batches this rank gets from MultitaskTrainer's dataloader to a JSON file.

PYTHONPATH=. torchrun --nproc_per_node 2 tests/ddp_batches.py TINY_BERT_DIR OUT_DIR   (from the project's root)
"""

import json
import sys
from pathlib import Path

from conftest import tiny_trainer

if __name__ == "__main__":
    base, out = sys.argv[1], Path(sys.argv[2])
    trainer = tiny_trainer(base, 16, output_dir=str(out))
    batches = [(batch["task"], batch["input_ids"].tolist()) for batch in trainer.get_train_dataloader()]
    (out / f"rank{trainer.args.process_index}.json").write_text(json.dumps(batches))
