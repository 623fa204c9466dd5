"""Multi-task BERT: one shared BERT encoder, a sentiment head and a BERT2BERT translation decoder.

    input_ids ──► encoder (BertModel) ──► pooled ──► classifier ─────────────► sentiment_logits  [B, num_labels]
                          │
                          └─ encoder_hidden_states ──► decoder (BertModel, causal + cross-attention) ──► lm_head
                                                                                       ──► logits [B, T, vocab]

The encoder, the decoder's input embeddings and the output projection share one word-embedding matrix (the checkpoint's
vocabulary covers both languages). Every class below holds the same modules, so one saved folder loads as the full model
(`AutoModel`), as a sentiment classifier (`AutoModelForSequenceClassification`) or as a translator
(`AutoModelForSeq2SeqLM`), and fine-tuning one view saves the other task's weights unchanged.

This file travels with the weights (`trust_remote_code=True`): it may import only `torch`, `transformers` and the
configuration file saved beside it.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertModel, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput, SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLMPredictionHead, BertOnlyMLMHead
from transformers.models.encoder_decoder.modeling_encoder_decoder import shift_tokens_right
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

# The pipeline module is imported too so that transformers copies it wherever it copies this file (save_pretrained,
# the remote-code cache): config.custom_pipelines names it.
try:  # loaded by transformers as remote code, from the folder that holds the weights
    from .configuration_multitask import MultitaskBertConfig
    from .pipeline_multitask import MultitaskPipeline  # noqa: F401
except ImportError:  # imported from a checkout of the project
    from configuration_multitask import MultitaskBertConfig
    from pipeline_multitask import MultitaskPipeline  # noqa: F401


@dataclass
class MultitaskBertOutput(ModelOutput):
    r"""
    Output of [`MultitaskBertModel`].

    loss (`torch.FloatTensor` of shape `()`, *optional*):
        Loss of the task the `labels` belong to: sentiment cross-entropy for labels of shape `(batch_size,)`,
        translation cross-entropy (tokens labelled -100 ignored) for labels of shape `(batch_size, target_length)`.
    logits (`torch.FloatTensor` of shape `(batch_size, target_length, vocab_size)`, *optional*):
        Translation scores; present when the decoder ran (decoder inputs or token labels were given), except in
        training mode with token labels, where only the labelled positions are projected, for the loss. Named `logits`
        so that `generate()` works on the full model.
    sentiment_logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`, *optional*):
        Sentiment scores; present when the encoder ran in this call (not in generation steps) and the labels, if any,
        were not translation tokens.
    cache (`EncoderDecoderCache`, *optional*):
        The decoder's self- and cross-attention keys and values, for incremental decoding.
    encoder_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, source_length, hidden_size)`):
        The shared encoder's output; `generate(encoder_outputs=BaseModelOutput(last_hidden_state=...))` translates
        from it without encoding again.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    sentiment_logits: torch.FloatTensor | None = None
    cache: Cache | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None


class MultitaskBertSentimentHead(nn.Module):
    """Pools the encoder's token states (masked mean or first token), then a dropout and a linear layer."""

    def __init__(self, config: MultitaskBertConfig):
        super().__init__()
        self.pooling = config.classifier_pooling
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.encoder.hidden_dropout_prob if dropout is None else dropout)
        self.out_proj = nn.Linear(config.encoder.hidden_size, config.num_labels)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        # hidden_states: [B, S, H], attention_mask: [B, S] (1 = token, 0 = padding; None: no padding) -> [B, labels]
        if self.pooling == "cls":
            pooled = hidden_states[:, 0]
        elif attention_mask is None:
            pooled = hidden_states.sum(dim=1) / hidden_states.shape[1]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # [B, S, 1]
            pooled = (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.out_proj(self.dropout(pooled))


class MultitaskBertPreTrainedModel(PreTrainedModel):
    config_class = MultitaskBertConfig
    config: MultitaskBertConfig
    base_model_prefix = "multitask"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["BertEmbeddings", "BertLayer"]
    # One word-embedding matrix: encoder input, decoder input and the output projection (whose bias is the head's).
    _tied_weights_keys = {
        "decoder.embeddings.word_embeddings.weight": "encoder.embeddings.word_embeddings.weight",
        "lm_head.predictions.decoder.weight": "encoder.embeddings.word_embeddings.weight",
        "lm_head.predictions.decoder.bias": "lm_head.predictions.bias",
    }
    # The loss is always the mean over the batch's scored items (sentences, or target tokens but -100), and Trainer
    # passes no `num_items_in_batch`: its token count would include the leading start token of every target, which is
    # a decoder input, not a scored token (see `MultitaskBertModel.strip_decoder_start`).
    accepts_loss_kwargs = False
    # Tied copies are never written, so a state dict loaded back (Trainer's best checkpoint) lacks them by design.
    _keys_to_ignore_on_save = list(_tied_weights_keys)

    # Copied from transformers.models.bert.modeling_bert.BertPreTrainedModel._init_weights
    def _init_weights(self, module):
        """Initialize the weights"""
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)


def default_generation_config(config: MultitaskBertConfig) -> GenerationConfig:
    """The translation's settings of a model that has no saved ones (a fresh model, a folder without
    generation_config.json)."""
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        # never a target after the start (see `strip_decoder_start`); early in training the tied output layer would
        # otherwise echo the start token forever
        suppress_tokens=sorted({config.decoder_start_token_id, config.pad_token_id}),
        num_beams=4,
        max_new_tokens=min(128, config.decoder.max_position_embeddings),  # what `generate` accepts
    )


class MultitaskBertModel(MultitaskBertPreTrainedModel, GenerationMixin):
    """The full multi-task model: both heads on the shared encoder. `generate()` translates.

    Encoding once for both tasks (what the pipeline and the trainer's evaluation do):

        out = model(input_ids=input_ids, attention_mask=attention_mask)  # out.sentiment_logits: [B, num_labels]
        encoder_outputs = BaseModelOutput(last_hidden_state=out.encoder_last_hidden_state)  # [B, S, H]
        generated = model.generate(encoder_outputs=encoder_outputs, attention_mask=attention_mask)  # [B, T]
    """

    _auto_class = "AutoModel"

    def __init__(self, config: MultitaskBertConfig):
        super().__init__(config)
        self.encoder = BertModel(config.encoder, add_pooling_layer=False)
        self.classifier = MultitaskBertSentimentHead(config)
        self.decoder = BertModel(config.decoder, add_pooling_layer=False)
        self.lm_head = BertOnlyMLMHead(config.decoder)
        # The sub-models got deep copies of their configs: point them back at the composite's own, keeping the
        # attention implementation each resolved, so that changes to `model.config` reach them.
        for name in ("encoder", "decoder"):
            sub_config = getattr(config, name)
            sub_config._attn_implementation = getattr(self, name).config._attn_implementation
            getattr(self, name).config = sub_config
        # every view keeps the translation's settings: the sentiment view saves them too (its `save_pretrained`)
        self.generation_config = default_generation_config(config)
        self.post_init()

    def get_encoder(self, modality=None):
        return self.encoder

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)
        self.decoder.set_input_embeddings(value)

    # Copied from transformers.models.bert.modeling_bert.BertForMaskedLM.get_output_embeddings with cls->lm_head
    def get_output_embeddings(self):
        return self.lm_head.predictions.decoder

    # Copied from transformers.models.bert.modeling_bert.BertForMaskedLM.set_output_embeddings with cls->lm_head
    def set_output_embeddings(self, new_embeddings):
        self.lm_head.predictions.decoder = new_embeddings
        self.lm_head.predictions.bias = new_embeddings.bias

    def strip_decoder_start(self, labels: torch.Tensor) -> torch.Tensor:
        """Targets as `tokenizer(text_target=...)` gives them, `<s> text </s>`, begin with the decoder start token:
        that token is the decoder's first input, not something to predict. [B, T] -> [B, T - 1] when every row
        starts with it, unchanged otherwise."""
        start = self.config.decoder_start_token_id
        if labels.shape[1] > 1 and bool((labels[:, 0] == start).all()):
            return labels[:, 1:]
        return labels

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: `<s> text` from `<s> text </s>` (used by `DataCollatorForSeq2Seq`)."""
        labels = self.strip_decoder_start(labels)
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _scored_labels(self, labels: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """The targets aligned with the decoder inputs. Labels one token longer than the decoder inputs are
        `<s> text </s>` (`prepare_decoder_input_ids_from_labels` made `<s> text` of them): their start token is an
        input, not a target. Decided by shapes, so that a compiled training step has no data-dependent branch; in
        eager mode the start token is checked too."""
        longer = labels.shape[1] == decoder_input_ids.shape[1] + 1
        starts = None  # unknown under compilation
        if not torch.compiler.is_compiling() and labels.shape[1] > 1:
            starts = bool((labels[:, 0] == self.config.decoder_start_token_id).all())
        if labels.shape[1] - longer != decoder_input_ids.shape[1] or starts not in (None, longer):
            raise ValueError(
                f"labels ({labels.shape[1]} tokens{', beginning with the decoder start token' if starts else ''}) do "
                f"not match decoder_input_ids ({decoder_input_ids.shape[1]} tokens): labels are `text </s>` of the "
                "decoder inputs' length, or `<s> text </s>` one token longer; build the decoder inputs with "
                "prepare_decoder_input_ids_from_labels"
            )
        return labels[:, 1:] if longer else labels

    def _translation_loss(self, hidden_states: torch.Tensor, labels: torch.Tensor):
        """(loss, logits) of the decoder states [B, T, H] against the scored labels [B, T]. In training only the
        labelled positions are projected, and no logits are returned: the vocabulary projection is the largest matmul
        of the model and padding is often a third of a batch."""
        if self.training:
            keep = labels != -100  # [B, T]
            logits = self.lm_head(sequence_output=hidden_states[keep])  # [N labelled, vocab]
            return _cross_entropy(logits, labels[keep], self.config.label_smoothing), None
        logits = self.lm_head(sequence_output=hidden_states)  # [B, T, vocab]
        return _cross_entropy(logits, labels, self.config.label_smoothing), logits

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> MultitaskBertOutput:
        r"""
        encoder_outputs (`BaseModelOutput` or `tuple`, *optional*):
            The shared encoder's output of an earlier call (`encoder_last_hidden_state`): the encoder does not run
            again, nor does the sentiment head (`generate()` passes it at every decoding step).
        labels (`torch.LongTensor`, *optional*):
            Shape `(batch_size,)`: sentiment class ids. Shape `(batch_size, target_length)`: Marathi token ids of the
            translation (`-100` ignored); the decoder inputs are then the labels shifted right.

        The decoder runs when `decoder_input_ids` or token labels are given; the sentiment head runs when the encoder
        runs in this call and no token labels are given.
        """
        if labels is not None and labels.dim() not in (1, 2):
            raise ValueError(
                f"labels must have shape (batch_size,) for sentiment or (batch_size, length) for translation, got "
                f"{tuple(labels.shape)}"
            )
        token_labels = labels is not None and labels.dim() == 2
        run_classifier = encoder_outputs is None and not token_labels  # a translation batch has no use for it
        if encoder_outputs is None:
            _check_token_ids(input_ids, "input_ids", self.config.encoder)
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                return_dict=True,
                **kwargs,
            )
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(*encoder_outputs)
        encoder_hidden_states = encoder_outputs.last_hidden_state  # [B, S, H]

        loss = sentiment_logits = logits = decoder_outputs = None
        if run_classifier:
            sentiment_logits = self.classifier(hidden_states=encoder_hidden_states, attention_mask=attention_mask)
            if labels is not None:
                loss = _cross_entropy(sentiment_logits, labels)  # [B, num_labels] against [B]
        if decoder_input_ids is not None or token_labels:
            if token_labels:
                use_cache = False
                if decoder_input_ids is None:
                    decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
                labels = self._scored_labels(labels, decoder_input_ids)
            if cache is None or cache.get_seq_length() == 0:  # later decoding steps feed back generated ids
                _check_token_ids(decoder_input_ids, "decoder_input_ids", self.config.decoder)
            decoder_outputs = self.decoder(
                input_ids=decoder_input_ids,
                attention_mask=decoder_attention_mask,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=attention_mask,
                cache=cache,
                use_cache=use_cache,
                return_dict=True,
                **kwargs,
            )
            if token_labels:
                loss, logits = self._translation_loss(decoder_outputs.last_hidden_state, labels)
            else:
                logits = self.lm_head(sequence_output=decoder_outputs.last_hidden_state)  # [B, T, vocab]

        return MultitaskBertOutput(
            loss=loss,
            logits=logits,
            sentiment_logits=sentiment_logits,
            cache=decoder_outputs.cache if decoder_outputs is not None else None,
            encoder_last_hidden_state=encoder_hidden_states,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
            decoder_hidden_states=decoder_outputs.hidden_states if decoder_outputs is not None else None,
            decoder_attentions=decoder_outputs.attentions if decoder_outputs is not None else None,
            cross_attentions=decoder_outputs.cross_attentions if decoder_outputs is not None else None,
        )

    def generate(self, *args, **kwargs):
        """`GenerationMixin.generate`, with two guards: decoder inputs made from `labels` (a collator's teacher
        forcing) are dropped, and a `max_new_tokens` beyond the decoder's position embeddings is refused. The decoder
        reads the start token and every written token but the last, so such a length fails only once some output
        grows that long (deep inside the decoder, minutes into a batch)."""
        labels = kwargs.pop("labels", None)  # generation has no use for them
        if labels is not None and labels.dim() == 2 and kwargs.get("decoder_input_ids") is not None:
            # Seq2SeqTrainer(predict_with_generate=True) drops a collator's teacher-forcing inputs only when they are
            # as long as the labels; `<s> text` of `<s> text </s>` is one token shorter, and generation would go on
            # from the reference. Those inputs are recognised as made from the labels, and dropped.
            teacher_forcing = self.prepare_decoder_input_ids_from_labels(labels)
            if teacher_forcing.shape == kwargs["decoder_input_ids"].shape and torch.equal(
                teacher_forcing.to(kwargs["decoder_input_ids"].device), kwargs["decoder_input_ids"]
            ):
                kwargs.pop("decoder_input_ids")
                kwargs.pop("decoder_attention_mask", None)
        config = kwargs.get("generation_config") or self.generation_config
        longest = kwargs.get("max_new_tokens") or config.max_new_tokens
        positions = self.config.decoder.max_position_embeddings
        if longest is not None and longest > positions:
            raise ValueError(
                f"max_new_tokens {longest} is more than the decoder's {positions} positions: use {positions} or less"
            )
        return super().generate(*args, **kwargs)

    @torch.no_grad()
    def select_vocabulary(self, keep: list[int]) -> "MultitaskBertModel":
        """A new model of this class over this one's vocabulary rows `keep`, in that order (old token `keep[i]` is
        token `i`): the shared word embeddings and the output bias keep those rows, the special token ids of the config
        and the generation config are renumbered, every other weight is copied. This model is left unchanged."""
        new_id = {old: new for new, old in enumerate(keep)}
        values = self.config.to_dict()
        values["encoder"]["vocab_size"] = values["decoder"]["vocab_size"] = len(keep)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            values[name] = new_id[values[name]]
        state = {k: v for k, v in self.state_dict().items() if k not in self._tied_weights_keys}
        for name in ("encoder.embeddings.word_embeddings.weight", "lm_head.predictions.bias"):  # [vocab, ...]
            state[name] = state[name][torch.tensor(keep, device=state[name].device)]
        selected = type(self)(type(self.config).from_dict(values))
        missing, unexpected = selected.load_state_dict(state, strict=False)
        if set(missing) - set(self._tied_weights_keys) or unexpected:
            raise ValueError(f"selecting the vocabulary lost weights: missing {missing}, unexpected {unexpected}")
        selected.tie_weights()
        if self.can_generate():
            generation = _renumber_token_ids(self.generation_config.to_dict(), new_id)
            selected.generation_config = type(self.generation_config).from_dict(generation)
        return selected.train(self.training)


class MultitaskBertForSequenceClassification(MultitaskBertModel):
    """The sentiment view: `logits` are the classes of `config.id2label` (works with the text-classification pipeline).

    It holds (and saves) the translation weights too, untouched unless trained.
    """

    _auto_class = "AutoModelForSequenceClassification"

    @classmethod
    def can_generate(cls) -> bool:
        return False

    # This view cannot generate (its `logits` are the classes), so transformers neither loads nor saves its generation
    # settings; a folder saved from it would then translate with transformers' defaults (greedy, 20 tokens) when
    # loaded as the translation view. They are loaded and saved here.
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        hub = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
        try:
            model.generation_config = GenerationConfig.from_pretrained(
                pretrained_model_name_or_path, **{k: kwargs[k] for k in hub if k in kwargs}
            )
        except OSError:  # a folder without generation_config.json keeps the defaults
            pass
        return model

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self.generation_config.save_pretrained(save_directory)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): class ids of `config.id2label`.
        """
        if labels is not None and labels.dim() != 1:
            raise ValueError(f"sentiment labels must have shape (batch_size,), got {tuple(labels.shape)}")
        outputs = super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            labels=labels,
            return_dict=True,
            **kwargs,
        )
        return SequenceClassifierOutput(
            loss=outputs.loss,
            logits=outputs.sentiment_logits,
            hidden_states=outputs.encoder_hidden_states,
            attentions=outputs.encoder_attentions,
        )


class MultitaskBertForConditionalGeneration(MultitaskBertModel):
    """The translation view: a sequence-to-sequence model whose `generate()` writes Marathi.

    It holds (and saves) the sentiment head too, untouched unless trained.
    """

    _auto_class = "AutoModelForSeq2SeqLM"

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Target token ids (`-100` ignored); the decoder inputs are the labels shifted right when not given.
        """
        if labels is not None and labels.dim() != 2:
            raise ValueError(f"translation labels must have shape (batch_size, length), got {tuple(labels.shape)}")
        if labels is None and decoder_input_ids is None:
            raise ValueError("translation needs decoder_input_ids or labels")
        outputs = super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            labels=labels,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        return Seq2SeqLMOutput(
            loss=outputs.loss,
            logits=outputs.logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )


def _check_token_ids(ids: torch.Tensor | None, name: str, config) -> None:
    """Clear errors for what would otherwise fail deep inside an embedding lookup."""
    if ids is None:
        return
    if ids.dim() != 2 or ids.shape[0] == 0:
        raise ValueError(f"empty batch or wrong shape: {name} has shape {tuple(ids.shape)}, expected (batch, length)")
    if ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"{name} is {ids.shape[1]} tokens long but the model takes at most {config.max_position_embeddings}: "
            "truncate it (tokenizer(..., truncation=True))"
        )
    if ids.numel() and not torch.compiler.is_compiling():  # reading the values would split a compiled graph
        low, high = torch.stack(torch.aminmax(ids)).tolist()  # one device sync for both bounds
        if low < 0 or high >= config.vocab_size:
            raise ValueError(
                f"{name} holds token id {high if high >= config.vocab_size else low} outside the model's vocabulary "
                f"of {config.vocab_size}: the tokenizer does not match the model"
            )


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the last dimension, -100 ignored: logits [..., C] against labels [...]. In fp32, as
    the logits may come from bf16 autocast."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1).to(logits.device),
        ignore_index=-100,
        label_smoothing=label_smoothing,
    )


def _renumber_token_ids(generation: dict, new_id: dict[int, int]) -> dict:
    """A generation config's token ids (`*_token_id`, `suppress_tokens`) in a selected vocabulary."""
    out = dict(generation)
    for key, value in generation.items():
        if key.endswith("token_id") and isinstance(value, int):
            out[key] = new_id[value]
        elif key in ("suppress_tokens", "begin_suppress_tokens") and value:
            out[key] = [new_id[v] for v in value if v in new_id]
    return out


__all__ = [
    "MultitaskBertPreTrainedModel",
    "MultitaskBertModel",
    "MultitaskBertForSequenceClassification",
    "MultitaskBertForConditionalGeneration",
    "MultitaskBertOutput",
]
