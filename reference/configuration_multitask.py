"""Configuration of the multi-task BERT model: one shared encoder, a sentiment head and a translation decoder.

This file travels with the weights (`trust_remote_code=True`): it may import only `transformers` and the standard
library.
"""

import copy
from typing import Literal

from transformers import BertConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

DEFAULT_ID2LABEL = {0: "negative", 1: "positive"}
TASK_NAMES = ("sentiment", "translation")

# Written into config.json so that the three Auto classes find the code saved next to the weights.
AUTO_MAP = {
    "AutoConfig": "configuration_multitask.MultitaskBertConfig",
    "AutoModel": "modeling_multitask.MultitaskBertModel",
    "AutoModelForSequenceClassification": "modeling_multitask.MultitaskBertForSequenceClassification",
    "AutoModelForSeq2SeqLM": "modeling_multitask.MultitaskBertForConditionalGeneration",
}

# The multi-task pipeline (`pipeline_multitask.py`, saved beside the model code): `pipeline(model=path,
# trust_remote_code=True)` picks it when it is the only custom pipeline of the config.
CUSTOM_PIPELINES = {
    "multitask-bert": {"impl": "pipeline_multitask.MultitaskPipeline", "pt": ["AutoModel"], "tf": [], "type": "text"}
}
# Tasks `pipeline(task, model=path, trust_remote_code=True)` also finds, each with its pipeline class: transformers 5
# removed its "translation" pipeline, and looks a task up in config.custom_pipelines before its own tasks.
PIPELINE_ALIASES = {
    task: {"impl": "pipeline_multitask.TranslationPipeline", "pt": ["AutoModel"], "tf": [], "type": "text"}
    for task in ("translation", "translation_en_to_mr")
}


class CustomPipelines(dict):
    """`config.custom_pipelines`: the saved entries, and the tasks of `PIPELINE_ALIASES` on lookup. The aliases are
    neither counted nor listed (nor saved): transformers infers the task of `pipeline(model=path)` only when the config
    has exactly one custom pipeline, and that must stay the multi-task pipeline."""

    def __contains__(self, task) -> bool:
        return dict.__contains__(self, task) or task in PIPELINE_ALIASES

    def __missing__(self, task) -> dict:
        if task not in PIPELINE_ALIASES:
            raise KeyError(task)
        return copy.deepcopy(PIPELINE_ALIASES[task])  # transformers rewrites the entry it gets in place


class MultitaskBertConfig(PreTrainedConfig):
    r"""
    Configuration of [`MultitaskBertModel`]: a BERT encoder shared by a sentence classification head (sentiment) and a
    BERT decoder with causal self-attention and cross-attention (English→Marathi translation).

    Args:
        encoder (`BertConfig` or `dict`):
            The shared encoder. Its word embeddings are also the decoder's input embeddings and output projection.
        decoder (`BertConfig` or `dict`):
            The decoder: BERT layers with `is_decoder=True` and `add_cross_attention=True` (set here whatever the
            input says). It may have fewer layers than the encoder; its `hidden_size` and `vocab_size` must equal the
            encoder's, because the word embeddings are shared.
        classifier_pooling (`"mean"` or `"cls"`, defaults to `"mean"`):
            How the sentiment head pools the encoder's token states: the masked mean (what multilingual-e5 was trained
            with) or the first token.
        classifier_dropout (`float`, *optional*):
            Dropout before the sentiment classifier; the encoder's `hidden_dropout_prob` when `None`.
        label_smoothing (`float`, defaults to 0.0):
            Label smoothing of the translation loss.
        trained_tasks (`list[str]`, *optional*):
            The tasks whose heads were trained ("sentiment", "translation"); `None`: both. A model trained on one task
            only (a run without the other's data, a LoRA run's `merged-<task>` export) names it: the other head is
            untrained, and the pipeline refuses to answer for it instead of giving random outputs.
        id2label / label2id:
            Sentiment classes; `{0: "negative", 1: "positive"}` by default. Any other label set is allowed, the two maps
            must agree.
        pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id (`int`):
            Special token ids of the shared vocabulary. The decoder starts from `decoder_start_token_id` (`<s>` by
            default): a target tokenized as `<s> text </s>` is fed as `<s> text` and scored on `text </s>`.
    """

    model_type = "multitask-bert"
    _auto_class = "AutoConfig"
    sub_configs_defaults = {
        "encoder": SubConfigSpec(BertConfig),
        "decoder": SubConfigSpec(BertConfig, init_kwargs={"is_decoder": True, "add_cross_attention": True}),
    }

    encoder: BertConfig | dict | None = None
    decoder: BertConfig | dict | None = None
    classifier_pooling: Literal["mean", "cls"] = "mean"
    classifier_dropout: float | None = None
    label_smoothing: float = 0.0
    trained_tasks: list[str] | None = None
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | None = 2
    decoder_start_token_id: int | None = 0
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = True

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels") is None:
            self.id2label = dict(DEFAULT_ID2LABEL)
        super().__post_init__(**kwargs)
        if self.label2id is None:
            self.label2id = {label: i for i, label in self.id2label.items()}
        if getattr(self, "auto_map", None) is None:
            self.auto_map = dict(AUTO_MAP)
        pipelines = getattr(self, "custom_pipelines", None)
        self.custom_pipelines = CustomPipelines(copy.deepcopy(CUSTOM_PIPELINES if pipelines is None else pipelines))
        # The decoder is always a causal decoder with cross-attention, and both stacks share one vocabulary and one
        # set of special tokens (GenerationConfig.from_model_config reads them from the decoder config).
        self.decoder.is_decoder = True
        self.decoder.add_cross_attention = True
        for sub in (self.encoder, self.decoder):
            sub.pad_token_id, sub.bos_token_id, sub.eos_token_id = (
                self.pad_token_id,
                self.bos_token_id,
                self.eos_token_id,
            )
        self._validate()

    @property
    def vocab_size(self) -> int:
        return self.encoder.vocab_size

    def check_tokenizer(self, tokenizer) -> None:
        """Raise `ValueError` unless `tokenizer` is this model's: as many tokens as the embeddings have rows (a built
        model drops the rows no token can reach, a trimmed one keeps both equal) and the same pad, start (<s> or
        [CLS]) and end (</s> or [SEP]) ids. A folder without its tokenizer files loads a stub tokenizer that maps every
        word to <unk> without any error: this check is what catches it."""
        model = f"model {self.name_or_path}" if self.name_or_path else "the model"
        cause = (
            "the folder's tokenizer files are missing or belong to another model: tokenizer.json and "
            "tokenizer_config.json must be the ones saved with the weights"
        )
        if tokenizer is None:
            raise ValueError(f"no tokenizer could be loaded for {model}: {cause}")
        if len(tokenizer) != self.encoder.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(tokenizer):,} tokens but {model} has a vocabulary of "
                f"{self.encoder.vocab_size:,}: {cause}"
            )
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        for name, value in (("pad_token_id", tokenizer.pad_token_id), ("bos_token_id", start), ("eos_token_id", end)):
            if value != getattr(self, name):
                raise ValueError(
                    f"the tokenizer's {name} is {value} but {model}'s config says {getattr(self, name)}: {cause}"
                )

    def _validate(self):
        enc, dec = self.encoder, self.decoder
        if self.classifier_pooling not in ("mean", "cls"):
            raise ValueError(f"classifier_pooling must be 'mean' or 'cls', got {self.classifier_pooling!r}")
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.trained_tasks is not None and not set(self.trained_tasks) <= set(TASK_NAMES):
            raise ValueError(f"trained_tasks must name tasks among {TASK_NAMES}, got {self.trained_tasks}")
        for name, sub in (("encoder", enc), ("decoder", dec)):
            if sub.num_hidden_layers < 1:
                raise ValueError(f"{name}.num_hidden_layers must be at least 1, got {sub.num_hidden_layers}")
            if sub.hidden_size % sub.num_attention_heads:
                raise ValueError(
                    f"{name}.hidden_size ({sub.hidden_size}) is not a multiple of "
                    f"{name}.num_attention_heads ({sub.num_attention_heads})"
                )
        if dec.hidden_size != enc.hidden_size:
            raise ValueError(
                f"decoder.hidden_size ({dec.hidden_size}) must equal encoder.hidden_size ({enc.hidden_size}): "
                "the word embeddings are shared"
            )
        if dec.vocab_size != enc.vocab_size:
            raise ValueError(
                f"decoder.vocab_size ({dec.vocab_size}) must equal encoder.vocab_size ({enc.vocab_size}): "
                "the word embeddings are shared"
            )
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is None:
                raise ValueError(f"{name} is missing: the translation decoder needs it")
            if not 0 <= value < enc.vocab_size:
                raise ValueError(f"{name}={value} is outside the vocabulary (size {enc.vocab_size})")
        if not self.id2label:
            raise ValueError("id2label is empty: the sentiment head needs at least one class")
        if sorted(self.id2label) != list(range(len(self.id2label))):
            raise ValueError(f"id2label keys must be 0..{len(self.id2label) - 1}, got {sorted(self.id2label)}")
        expected = {label: i for i, label in self.id2label.items()}
        if len(expected) != len(self.id2label):
            raise ValueError(f"id2label maps two ids to the same label: {self.id2label}")
        label2id = {str(k): int(v) for k, v in self.label2id.items()}
        if label2id != expected:
            raise ValueError(f"label2id {self.label2id} does not match id2label {self.id2label}")


__all__ = ["MultitaskBertConfig"]
