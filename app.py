"""Demo page, as a Hugging Face Space runs it: type English, see its sentiment and its Marathi translation.

python app.py --model outputs/multitask-bert          # any saved folder or Hub id
MODEL=you/multitask-bert python app.py                # how a Space passes it (Space variables)

The page listens on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (a Space sets both), 127.0.0.1:7860 when unset (PORT is read
when GRADIO_SERVER_PORT is not set); --host and --port override them. MODEL_REVISION pins the model's commit.
"""

import argparse
import os
from collections.abc import Callable, Mapping

import gradio as gr
from transformers import pipeline

EXAMPLES = ["The film was wonderful and the actors were superb.", "Where is the railway station?"]
# A public page must not let one request tie up the model: longer text is refused before the model runs.
MAX_CHARS = 2000
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860  # loopback unless told otherwise: a laptop run is not published


def check_settings(num_beams: int, max_new_tokens: int, max_chars: int) -> None:
    for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens), ("max_chars", max_chars)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def make_analyse(pipe, num_beams: int, max_new_tokens: int, max_chars: int) -> Callable[[str], tuple[str, str]]:
    """The page's handler: text in, (sentiment, translation) out; bad input is shown on the page as an error."""

    def analyse(text: str) -> tuple[str, str]:
        if not text or not text.strip():
            raise gr.Error("Type an English sentence first.")
        if len(text) > max_chars:
            raise gr.Error(f"The text has {len(text):,} characters; this demo takes at most {max_chars:,}.")
        result = pipe(text, num_beams=num_beams, max_new_tokens=max_new_tokens)
        return f"{result['label']} ({result['score']:.2f})", result["translation"]

    return analyse


def build_demo(
    model: str, revision: str | None = None, num_beams: int = 4, max_new_tokens: int = 64, max_chars: int = MAX_CHARS
) -> gr.Blocks:
    check_settings(num_beams, max_new_tokens, max_chars)  # before the model is loaded
    pipe = pipeline(model=model, trust_remote_code=True, revision=revision)
    analyse = make_analyse(pipe, num_beams, max_new_tokens, max_chars)

    with gr.Blocks(title="multitask-bert: sentiment and English→Marathi") as demo:
        gr.Markdown(f"## English sentiment and English→Marathi translation\nModel: `{model}`")
        text = gr.Textbox(label="English text", lines=2, max_length=max_chars, elem_id="english")
        button = gr.Button("Analyse", variant="primary", elem_id="analyse")
        sentiment = gr.Textbox(label="Sentiment", elem_id="sentiment")
        translation = gr.Textbox(label="Marathi translation", elem_id="translation")
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


def parse_args(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> argparse.Namespace:
    """Flags first, then the environment a Space (or any host) sets, then the defaults."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=environ.get("MODEL", "outputs/multitask-bert"))
    parser.add_argument("--revision", default=environ.get("MODEL_REVISION"))
    parser.add_argument("--host", default=environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST)
    parser.add_argument("--port", type=port_number, default=None)
    parser.add_argument("--num_beams", type=positive_int, default=4)
    parser.add_argument("--max_new_tokens", type=positive_int, default=64)
    parser.add_argument("--max_chars", type=positive_int, default=MAX_CHARS, help="longest text the page takes")
    args = parser.parse_args(argv)
    if args.port is None:  # read only when no flag overrides it: a bad variable must not block --port
        args.port = env_port(parser, environ)
    return args


def main() -> None:
    args = parse_args()
    demo = build_demo(args.model, args.revision, args.num_beams, args.max_new_tokens, args.max_chars)
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
