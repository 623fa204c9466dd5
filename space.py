"""Write a Hugging Face Space (Gradio SDK) that demonstrates a model, and optionally push it.

    python space.py --model you/multitask-bert --model_revision <commit> --out space --space_id you/mt-demo --push
    python space.py --model outputs/multitask-bert --out /tmp/space   # a local folder: try it with
    cd /tmp/space && python app.py                                     # (a local folder cannot be pushed)

The folder holds `app.py` (this project's demo page), `space_config.json` (the model and its pinned revision),
`README.md` (the Space's card: Gradio SDK at the tested version, the model linked) and `requirements.txt` (what
loading the model needs); `multitask_bert/space.py` writes and pushes it.
"""

import argparse
import sys

from multitask_bert import configure_logging
from multitask_bert.run_layout import is_local
from multitask_bert.space import push_space, write_space


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Hub repo id of the model, or a local folder (local try only)")
    parser.add_argument("--model_revision", help="commit of the model the Space loads (pins its code and weights)")
    parser.add_argument("--out", required=True, help="folder to write the Space into")
    parser.add_argument("--space_id", help="you/name of the Space (needed with --push)")
    parser.add_argument("--license", default="mit", help="licence of the Space (the model card's: mit)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--push", action="store_true", help="create the Space if needed and upload the folder")
    args = parser.parse_args(argv)
    if args.push and not args.space_id:
        parser.error("--push needs --space_id you/name")
    if args.push and is_local(args.model):
        parser.error(f"--push needs the model's Hub repo id: {args.model} is a local folder the Space cannot reach")
    return args


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    args = parse_args(argv)
    try:
        folder = write_space(
            args.model,
            args.out,
            revision=args.model_revision,
            space_id=args.space_id,
            license=args.license,
            replace=args.overwrite,
        )
    except FileExistsError:
        sys.exit(f"{args.out} already exists: choose another --out, or --overwrite to replace it")
    except ValueError as err:  # a model folder the Space cannot run, or one --out would delete
        sys.exit(f"space.py: error: {err}")
    print(f"Wrote the Space to {folder}")
    if args.push:
        commit = push_space(folder, args.space_id)
        print(f"Pushed to https://huggingface.co/spaces/{args.space_id} (commit {commit})")


if __name__ == "__main__":
    main()
