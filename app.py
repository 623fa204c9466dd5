"""Demo page, as a Hugging Face Space runs it: type English, see its sentiment and its Marathi translation.

python app.py                                         # the shipped model, reference/
python app.py --model outputs/multitask-bert          # any saved folder or Hub id
MODEL=you/multitask-bert python app.py                # a Space variable names the model

The model: --model, else the variable MODEL, else space_config.json beside this file (what space.py writes into a
Space folder), else the trained model the project ships (reference/ beside this file). Its commit comes with it:
--revision with --model, MODEL_REVISION with MODEL or space_config.json's model (whose own revision it overrides), the
revision space_config.json names; a local folder takes none. The page listens on
GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (a Space sets both), 127.0.0.1:7860 when unset (PORT is read when
GRADIO_SERVER_PORT is not set); --host and --port override them.

It runs as a Space's app.py on its own: it imports gradio and transformers only, nothing of this project.
"""

import argparse
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import gradio as gr
from transformers import AutoConfig, pipeline

EXAMPLES = ["The film was wonderful and the actors were superb.", "Where is the railway station?"]
# A public page must not let one request tie up the model: longer text is refused before the model runs.
MAX_CHARS = 2000
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860  # loopback unless told otherwise: a laptop run is not published
SETTINGS = Path(__file__).resolve().parent / "space_config.json"
DEFAULT_MODEL = str(Path(__file__).resolve().parent / "reference")  # the trained model the project ships
# Outputs must read as results, not as disabled fields: full-contrast text (Gradio greys out a non-interactive
# textbox), and Marathi in a Devanagari font when the visitor has one (the theme's Latin font has no such glyphs).
DEVANAGARI_FONTS = '"Noto Sans Devanagari", "Lohit Devanagari", "Nirmala UI", "Mangal", "Kohinoor Devanagari"'
CSS = f"""
#translation textarea, #translation textarea:disabled {{
  color: var(--body-text-color); -webkit-text-fill-color: var(--body-text-color); opacity: 1;
  background: var(--background-fill-primary); font-family: {DEVANAGARI_FONTS}, var(--font), sans-serif;
  font-size: 1.25rem; line-height: 1.6;
}}
"""


def check_settings(num_beams: int | None, max_new_tokens: int, max_chars: int) -> None:
    for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens), ("max_chars", max_chars)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def check_plain_model(model: str) -> None:
    """A LoRA run's folder holds its frozen base and one PEFT adapter folder per task: the pipeline would load the
    base alone, and the page would show an untrained model's answers. (The project's run_layout.check_plain_model
    says the same; this file imports nothing of the project.)"""
    adapters = sorted(path.parent.name for path in Path(model).glob("*/adapter_config.json"))
    if adapters:
        raise ValueError(
            f"{model} holds LoRA adapters ({', '.join(adapters)}): the demo page runs plain models, and would load "
            "the base without them; give it the merged-<task> folder that train.py --merge_adapter writes"
        )


def class_probabilities(result: dict) -> dict[str, float]:
    """Every sentiment class with its probability, for gr.Label, from a pipeline result asked with `top_k=None`."""
    return {entry["label"]: entry["score"] for entry in result["scores"]}


def make_analyse(pipe, num_beams: int | None, max_new_tokens: int, max_chars: int) -> Callable[[str], tuple[dict, str]]:
    """The page's handler: text in, (probability of each sentiment class, translation) out, from one pipeline call
    (one encoder pass); bad input is shown on the page as an error."""

    def analyse(text: str) -> tuple[dict[str, float], str]:
        if not text or not text.strip():
            raise gr.Error("Type an English sentence first.")
        if len(text) > max_chars:
            raise gr.Error(f"The text has {len(text):,} characters; this demo takes at most {max_chars:,}.")
        beams = {} if num_beams is None else {"num_beams": num_beams}  # else the model's generation_config's
        result = pipe(text, top_k=None, max_new_tokens=max_new_tokens, **beams)
        return class_probabilities(result), result["translation"]

    return analyse


def build_demo(
    model: str,
    revision: str | None = None,
    num_beams: int | None = None,
    max_new_tokens: int = 64,
    max_chars: int = MAX_CHARS,
) -> gr.Blocks:
    check_settings(num_beams, max_new_tokens, max_chars)  # before the model is loaded
    check_plain_model(model)
    if revision and Path(model).expanduser().is_dir():  # else shown on the page as pinning a folder it does not pin
        raise ValueError(f"a revision pins a Hub commit, and {model} is a local folder: drop the revision")
    config = AutoConfig.from_pretrained(model, trust_remote_code=True, revision=revision)
    trained = getattr(config, "trained_tasks", None)  # None: every task (so in folders saved before it)
    if trained is not None and not {"sentiment", "translation"} <= set(trained):  # before the weights load
        raise ValueError(
            f"the demo page shows sentiment and translation, and {model} was trained for "
            f"{' and '.join(trained) or 'no task'} only (a one-task run, or a LoRA run's merged-<task> export)"
        )
    pipe = pipeline(model=model, config=config, trust_remote_code=True, revision=revision)
    positions = pipe.model.config.decoder.max_position_embeddings
    if max_new_tokens > positions:  # else every long enough answer would fail, after the page is up
        raise ValueError(f"max_new_tokens {max_new_tokens} is more than the decoder's {positions} positions")
    analyse = make_analyse(pipe, num_beams, max_new_tokens, max_chars)

    with gr.Blocks(title="multitask-bert: sentiment and English→Marathi") as demo:
        pinned = f" at revision `{revision}`" if revision else ""
        gr.Markdown(f"## English sentiment and English→Marathi translation\nModel: `{model}`{pinned}")
        text = gr.Textbox(label="English text", lines=2, max_length=max_chars, elem_id="english")
        button = gr.Button("Analyse", variant="primary", elem_id="analyse")
        with gr.Row(equal_height=True):
            sentiment = gr.Label(label="Sentiment", elem_id="sentiment")  # every class, with its probability
            translation = gr.Textbox(
                label="Marathi translation", interactive=False, lines=2, buttons=["copy"], elem_id="translation"
            )
        gr.Examples(EXAMPLES, inputs=text)
        button.click(analyse, inputs=text, outputs=[sentiment, translation])
        text.submit(analyse, inputs=text, outputs=[sentiment, translation])
    return demo


def port_number(value: str) -> int:
    if not value.strip().isdecimal() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {value!r}")
    return int(value)


def positive_int(value: str) -> int:
    if not value.strip().isdecimal() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


def env_port(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> int:
    """The port a host asks for through its environment, 7860 when it asks for none."""
    for name in ("GRADIO_SERVER_PORT", "PORT"):
        if environ.get(name):
            try:
                return port_number(environ[name])
            except argparse.ArgumentTypeError as err:
                parser.error(f"environment variable {name}: {err}")
    return DEFAULT_PORT


def read_settings(path: Path = SETTINGS) -> dict[str, str | None]:
    """The model and revision a Space folder names in space_config.json; nothing where there is no such file."""
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SystemExit(f"cannot read {path} ({err}): write the Space folder again with space.py") from err
    if not isinstance(settings, dict) or not isinstance(settings.get("model"), str):
        raise SystemExit(f'{path} must hold {{"model": ..., "revision": ...}}: write it again with space.py')
    return settings


def default_model(environ: Mapping[str, str], settings: Mapping[str, str | None]) -> tuple[str, str | None]:
    """The model and revision when no flag names them. A MODEL variable brings its own revision (MODEL_REVISION or
    none): the revision in space_config.json is a commit of the model named there, not of another."""
    if environ.get("MODEL"):
        return environ["MODEL"], environ.get("MODEL_REVISION") or None
    return settings.get("model") or DEFAULT_MODEL, environ.get("MODEL_REVISION") or settings.get("revision")


def parse_args(
    argv: list[str] | None = None, environ: Mapping[str, str] = os.environ, settings: Mapping | None = None
) -> argparse.Namespace:
    """Flags first, then the environment a Space (or any host) sets, then space_config.json, then the defaults."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=f"saved folder or Hub id ({DEFAULT_MODEL} when nothing says)")
    parser.add_argument("--revision", default=None, help="Hub commit of --model (pins its code and weights)")
    parser.add_argument("--host", default=environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST)
    parser.add_argument("--port", type=port_number, default=None)
    parser.add_argument("--num_beams", type=positive_int, default=None, help="beams (the model's default when unset)")
    parser.add_argument("--max_new_tokens", type=positive_int, default=64, help="longest translation, in tokens")
    parser.add_argument("--max_chars", type=positive_int, default=MAX_CHARS, help="longest text the page takes")
    args = parser.parse_args(argv)
    if args.model is None:  # a --model flag comes without the revision the environment or the settings name
        args.model, revision = default_model(environ, read_settings() if settings is None else settings)
        args.revision = args.revision or revision
    if args.port is None:  # read only when no flag overrides it: a bad variable must not block --port
        args.port = env_port(parser, environ)
    return args


def main() -> None:
    args = parse_args()
    demo = build_demo(args.model, args.revision, args.num_beams, args.max_new_tokens, args.max_chars)
    demo.launch(server_name=args.host, server_port=args.port, css=CSS)


if __name__ == "__main__":
    main()
