"""Demo page, as a Hugging Face Space runs it: type English, see its sentiment and its Marathi translation.

python app.py --model outputs/multitask-bert          # any saved folder or Hub id
MODEL=you/multitask-bert python app.py                # how a Space passes it (Space variables)
"""

import argparse
import os

import gradio as gr
from transformers import pipeline

EXAMPLES = ["The film was wonderful and the actors were superb.", "Where is the railway station?"]


def build_demo(model: str, revision: str | None = None, num_beams: int = 4, max_new_tokens: int = 64) -> gr.Blocks:
    pipe = pipeline(model=model, trust_remote_code=True, revision=revision)

    def analyse(text: str) -> tuple[str, str]:
        if not text or not text.strip():
            raise gr.Error("Type an English sentence first.")
        result = pipe(text, num_beams=num_beams, max_new_tokens=max_new_tokens)
        return f"{result['label']} ({result['score']:.2f})", result["translation"]

    with gr.Blocks(title="multitask-bert: sentiment and English→Marathi") as demo:
        gr.Markdown(f"## English sentiment and English→Marathi translation\nModel: `{model}`")
        text = gr.Textbox(label="English text", lines=2, elem_id="english")
        button = gr.Button("Analyse", variant="primary", elem_id="analyse")
        sentiment = gr.Textbox(label="Sentiment", elem_id="sentiment")
        translation = gr.Textbox(label="Marathi translation", elem_id="translation")
        gr.Examples(EXAMPLES, inputs=text)
        button.click(analyse, inputs=text, outputs=[sentiment, translation])
        text.submit(analyse, inputs=text, outputs=[sentiment, translation])
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("MODEL", "outputs/multitask-bert"))
    parser.add_argument("--revision", default=os.environ.get("MODEL_REVISION"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)))
    args = parser.parse_args()
    build_demo(args.model, args.revision).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
