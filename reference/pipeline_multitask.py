"""The multi-task pipeline: English text in, sentiment and Marathi translation out, from one encoder pass.

    from transformers import pipeline
    pipe = pipeline(model="path/or/hub-id", trust_remote_code=True)
    pipe("The film was wonderful.")
    # {'label': 'positive', 'score': 0.97, 'translation': 'चित्रपट अप्रतिम होता.'}
    pipe(["...", "..."], batch_size=16, num_beams=4, max_new_tokens=64, tasks="both")
    pipe("The film was wonderful.", top_k=None)  # also "scores": every class, best first
    # {'label': 'positive', 'score': 0.97, 'scores': [{'label': 'positive', 'score': 0.97}, ...], 'translation': ...}

transformers v5 has no translation pipeline, so this one is registered in the saved config (`custom_pipelines`,
task "multitask-bert") and travels with the weights, like the model's code. `TranslationPipeline` is transformers 4's
translation pipeline for this model, which the config answers for the tasks "translation" and "translation_en_to_mr":

    translate = pipeline("translation", model="path/or/hub-id", trust_remote_code=True)
    translate("Where is the station?", num_beams=4)  # [{'translation_text': '...'}]
    translate(["...", "..."], batch_size=16)  # [{'translation_text': ...}, {'translation_text': ...}]
"""

import torch
from transformers import Pipeline
from transformers.modeling_outputs import BaseModelOutput

PIPELINE_TASK = "multitask-bert"
TASK_CHOICES = ("both", "sentiment", "translation")


class MultitaskPipeline(Pipeline):
    """Classifies the sentiment of English text and translates it into Marathi.

    Call arguments: `tasks` ("both", "sentiment" or "translation"), `max_length` (input tokens; longer text is
    truncated), `top_k` (as the text-classification pipeline's: the result also holds "scores", the `top_k` best
    classes, every class when `None`, best first) and any `generate()` argument (`num_beams`, `max_new_tokens`, ...).
    """

    returns_sequences = False  # one translation per text (TranslationPipeline returns every sequence)

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    # Tried but not required: a folder whose tokenizer cannot be built then reaches __init__ without one, where the
    # config's check says what is wrong (transformers' own error would blame a missing sentencepiece package).
    _load_tokenizer = None

    def __init__(self, model, tokenizer=None, *args, **kwargs):
        # A folder without tokenizer.json loads a 5-token stub tokenizer (every word <unk>) without any error; the
        # check turns that, and a tokenizer from another model, into an error before the first prediction.
        model.config.check_tokenizer(tokenizer)
        self._ready = False  # Pipeline.__init__ sanitizes the construction's arguments: no call asks for a task yet
        super().__init__(model, tokenizer, *args, **kwargs)
        self._ready = True

    def _sanitize_parameters(self, tasks=None, max_length=None, top_k="", **generate_kwargs):
        # top_k="" (not given) keeps the result to the best class, as the text-classification pipeline does
        preprocess, forward, postprocess = {}, dict(generate_kwargs), {}
        # generate() would fail deep inside (num_beams=0 divides by zero) or not at all: say which setting is wrong
        settings = {"max_length": max_length, "top_k": None if top_k == "" else top_k}
        for name in ("num_beams", "max_new_tokens", "max_length", "num_return_sequences", "top_k"):
            value = settings[name] if name in settings else generate_kwargs.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if (generate_kwargs.get("num_return_sequences") or 1) > 1 and not self.returns_sequences:
            # one "translation" per text: several sequences would be glued together, or given to the next texts
            raise ValueError(
                "num_return_sequences: this pipeline gives one translation per text; pipeline('translation', "
                "model=..., trust_remote_code=True) returns several"
            )
        if max_length is not None:
            positions = self.model.config.encoder.max_position_embeddings
            if max_length > positions:  # the model would refuse every text that long, after the batch is built
                raise ValueError(f"max_length {max_length} is more than the encoder's {positions} positions")
            preprocess["max_length"] = max_length
        if tasks is not None:
            if tasks not in TASK_CHOICES:
                raise ValueError(f"tasks must be one of {TASK_CHOICES}, got {tasks!r}")
            forward["tasks"] = tasks
        # a head that was never trained answers at random: a call asking for it is refused, not answered
        trained = getattr(self.model.config, "trained_tasks", None)  # None (or a config saved before it): every task
        asked = tasks or getattr(self, "_forward_params", {}).get(
            "tasks", "both"
        )  # the call's, the construction's, both
        asked = TASK_CHOICES[1:] if asked == "both" else (asked,)
        untrained = [task for task in asked if trained is not None and task not in trained]
        if untrained and self._ready:
            raise ValueError(
                f"this model's {' and '.join(untrained)} head was not trained (it was trained for "
                f"{' and '.join(trained) or 'no task'}: a one-task run, or a LoRA run's merged-<task> export)"
                + (f": ask tasks={trained[0]!r}" if trained else "")
            )
        if top_k != "":
            if tasks == "translation":
                raise ValueError("top_k ranks the sentiment classes, which tasks='translation' does not compute")
            postprocess["top_k"] = top_k
        return preprocess, forward, postprocess

    def preprocess(self, text, max_length=None):
        if not isinstance(text, str):
            raise ValueError(f"the pipeline takes English text, got {type(text).__name__}")
        if not text.strip():
            raise ValueError("the pipeline got an empty text")
        max_length = max_length or self.model.config.encoder.max_position_embeddings
        return self.tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")

    def _forward(self, model_inputs, tasks="both", **generate_kwargs):
        # One encoder pass serves both heads: the forward gives the sentiment and the encoder states generate() reuses.
        outputs = self.model(**model_inputs)
        result = {}
        if tasks in ("both", "sentiment"):
            result["probabilities"] = outputs.sentiment_logits.float().softmax(-1)  # [B, num_labels]
        if tasks in ("both", "translation"):
            result["generated"] = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=outputs.encoder_last_hidden_state),  # [B, S, H]
                attention_mask=model_inputs["attention_mask"],
                **generate_kwargs,
            )  # [B * num_return_sequences, T]
        return result

    def postprocess(self, model_outputs, top_k=""):
        result = {}
        if "probabilities" in model_outputs:
            probabilities = model_outputs["probabilities"].reshape(-1)
            ranked = torch.sort(probabilities, descending=True, stable=True).indices.tolist()  # ties: lower id first
            scores = [{"label": self.model.config.id2label[i], "score": float(probabilities[i])} for i in ranked]
            result.update(scores[0])
            if top_k != "":
                result["scores"] = scores[:top_k]
        if "generated" in model_outputs:
            ids = model_outputs["generated"].reshape(-1)
            result["translation"] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return result


class TranslationPipeline(MultitaskPipeline):
    """English→Marathi translation with the outputs of transformers 4's `TranslationPipeline`: one text gives a list
    of `{"translation_text": ...}` (one per returned sequence), a list of texts gives one such dict per text, or one
    list per text when `num_return_sequences` > 1.

    Call arguments: `max_length` (input tokens), `batch_size` and any `generate()` argument (`num_beams`,
    `max_new_tokens`, `num_return_sequences`, ...).
    """

    returns_sequences = True

    def __call__(self, inputs, *args, **kwargs):
        results = super().__call__(inputs, *args, **kwargs)
        # transformers 4 flattened a batch whose every text got one translation (Text2TextGenerationPipeline)
        if isinstance(inputs, list) and all(isinstance(r, list) and len(r) == 1 for r in results):
            return [r[0] for r in results]
        return results

    def _sanitize_parameters(self, tasks=None, **kwargs):
        if tasks not in (None, "translation"):
            raise ValueError(
                f"the translation pipeline only translates (tasks={tasks!r}): "
                "use pipeline(model=..., trust_remote_code=True) for the sentiment too"
            )
        return super()._sanitize_parameters(tasks="translation", **kwargs)

    def _forward(self, model_inputs, tasks="translation", **generate_kwargs):
        generated = super()._forward(model_inputs, tasks="translation", **generate_kwargs)["generated"]
        # [B * sequences, T] -> [B, sequences, T]: the pipeline splits outputs per input along the first dimension
        return {"generated": generated.reshape(model_inputs["input_ids"].shape[0], -1, generated.shape[-1])}

    def postprocess(self, model_outputs):
        sequences = model_outputs["generated"].reshape(-1, model_outputs["generated"].shape[-1])
        return [{"translation_text": self.tokenizer.decode(ids, skip_special_tokens=True).strip()} for ids in sequences]
