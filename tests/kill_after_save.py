"""Run train.py and SIGKILL the process right after the checkpoint of step N is written (for the resume test).

PYTHONPATH=. python tests/kill_after_save.py N <train.py arguments>   (from the project's root)
"""

import os
import signal
import sys

from transformers import TrainerCallback

import train


class KillAfterSave(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KilledTrainer(train.MultitaskTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(KillAfterSave(int(sys.argv[1])))


if __name__ == "__main__":
    train.MultitaskTrainer = KilledTrainer
    train.main(sys.argv[2:])
