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
        The shared encoder's output.
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

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # hidden_states: [B, S, H], attention_mask: [B, S] (1 = token, 0 = padding) -> [B, num_labels]
        if self.pooling == "cls":
            pooled = hidden_states[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
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
    # Trainer would count the leading start token of each target as a scored token when it normalises the loss over
    # an accumulation window; each batch's mean loss is used instead.
    accepts_loss_kwargs = False
    # Tied copies are never written, so a state dict loaded back (Trainer's best checkpoint) lacks them by design.
    _keys_to_ignore_on_save = list(_tied_weights_keys)

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)


class MultitaskBertModel(MultitaskBertPreTrainedModel, GenerationMixin):
    """The full multi-task model: both heads on the shared encoder. `generate()` translates."""

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
        if self.can_generate():
            self.generation_config = GenerationConfig(
                decoder_start_token_id=config.decoder_start_token_id,
                bos_token_id=config.bos_token_id,
                eos_token_id=config.eos_token_id,
                pad_token_id=config.pad_token_id,
                # never a target after the start (see `strip_decoder_start`); early in training the tied output
                # layer would otherwise echo the start token forever
                suppress_tokens=sorted({config.decoder_start_token_id, config.pad_token_id}),
                num_beams=4,
                max_new_tokens=128,
            )
        self.post_init()

    def get_encoder(self, modality=None):
        return self.encoder

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)
        self.decoder.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head.predictions.decoder

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
        labels = labels[:, 1:] if longer else labels
        return labels

    # ---- the three building blocks every view is made of -------------------------------------------------------

    def _encode(self, input_ids, attention_mask, token_type_ids, **kwargs) -> BaseModelOutput:
        _check_token_ids(input_ids, "input_ids", self.config.encoder)
        return self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            return_dict=True,
            **kwargs,
        )

    def _classify(self, encoder_hidden, attention_mask, labels=None, num_items_in_batch=None):
        # encoder_hidden: [B, S, H] -> logits [B, num_labels]
        if attention_mask is None:
            attention_mask = torch.ones(encoder_hidden.shape[:2], dtype=torch.long, device=encoder_hidden.device)
        logits = self.classifier(encoder_hidden, attention_mask)
        loss = None
        if labels is not None:
            if labels.dim() != 1:
                raise ValueError(f"sentiment labels must have shape (batch_size,), got {tuple(labels.shape)}")
            loss = _cross_entropy(logits, labels, 0.0, num_items_in_batch)
        return loss, logits

    def _translate(
        self,
        encoder_hidden,
        attention_mask,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        labels=None,
        cache=None,
        use_cache=None,
        num_items_in_batch=None,
        **kwargs,
    ):
        if labels is not None:
            if labels.dim() != 2:
                raise ValueError(f"translation labels must have shape (batch_size, length), got {tuple(labels.shape)}")
            use_cache = False
            if decoder_input_ids is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
            labels = self._scored_labels(labels, decoder_input_ids)
        if decoder_input_ids is None:
            raise ValueError("translation needs decoder_input_ids or labels")
        if cache is None or cache.get_seq_length() == 0:
            _check_token_ids(decoder_input_ids, "decoder_input_ids", self.config.decoder)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_hidden,
            encoder_attention_mask=attention_mask,
            cache=cache,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        hidden = decoder_outputs.last_hidden_state  # [B, T, H]
        if labels is not None and self.training:
            # Training needs the loss only: project just the labelled positions. The vocabulary projection is the
            # largest matmul of the model and padding is often a third of a batch. No logits are returned.
            keep = labels != -100  # [B, T]
            loss = _cross_entropy(
                self.lm_head(hidden[keep]), labels[keep], self.config.label_smoothing, num_items_in_batch
            )
            return loss, None, decoder_outputs
        logits = self.lm_head(hidden)  # [B, T, vocab]
        loss = None
        if labels is not None:
            loss = _cross_entropy(logits, labels, self.config.label_smoothing, num_items_in_batch)
        return loss, logits, decoder_outputs

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
        labels (`torch.LongTensor`, *optional*):
            Shape `(batch_size,)`: sentiment class ids. Shape `(batch_size, target_length)`: Marathi token ids of the
            translation (`-100` ignored); the decoder inputs are then the labels shifted right.

        The decoder runs when `decoder_input_ids` or token labels are given; the sentiment head runs when the encoder
        runs in this call and no token labels are given.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        ran_encoder = encoder_outputs is None
        if ran_encoder:
            encoder_outputs = self._encode(input_ids, attention_mask, token_type_ids, **kwargs)
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(*encoder_outputs)
        encoder_hidden = encoder_outputs.last_hidden_state

        token_labels = labels is not None and labels.dim() == 2
        loss = sentiment_logits = logits = decoder_outputs = None
        if ran_encoder and not token_labels:  # a translation training batch has no use for the sentiment head
            loss, sentiment_logits = self._classify(encoder_hidden, attention_mask, labels, num_items_in_batch)
        if decoder_input_ids is not None or token_labels:
            translation_loss, logits, decoder_outputs = self._translate(
                encoder_hidden,
                attention_mask,
                decoder_input_ids,
                decoder_attention_mask,
                labels if token_labels else None,
                cache,
                use_cache,
                num_items_in_batch,
                **kwargs,
            )
            loss = translation_loss if token_labels else loss
        return MultitaskBertOutput(
            loss=loss,
            logits=logits,
            sentiment_logits=sentiment_logits,
            cache=decoder_outputs.cache if decoder_outputs is not None else None,
            encoder_last_hidden_state=encoder_hidden,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
            decoder_hidden_states=decoder_outputs.hidden_states if decoder_outputs is not None else None,
            decoder_attentions=decoder_outputs.attentions if decoder_outputs is not None else None,
            cross_attentions=decoder_outputs.cross_attentions if decoder_outputs is not None else None,
        )


class MultitaskBertForSequenceClassification(MultitaskBertModel):
    """The sentiment view: `logits` are the classes of `config.id2label` (works with the text-classification pipeline).

    It holds (and saves) the translation weights too, untouched unless trained.
    """

    _auto_class = "AutoModelForSequenceClassification"

    @classmethod
    def can_generate(cls) -> bool:
        return False

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
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        encoder_outputs = self._encode(input_ids, attention_mask, token_type_ids, **kwargs)
        loss, logits = self._classify(encoder_outputs.last_hidden_state, attention_mask, labels, num_items_in_batch)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoder_outputs.hidden_states, attentions=encoder_outputs.attentions
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
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if encoder_outputs is None:
            encoder_outputs = self._encode(input_ids, attention_mask, token_type_ids, **kwargs)
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(*encoder_outputs)
        loss, logits, decoder_outputs = self._translate(
            encoder_outputs.last_hidden_state,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            labels,
            cache,
            use_cache,
            num_items_in_batch,
            **kwargs,
        )
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
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


def _cross_entropy(logits, labels, label_smoothing, num_items_in_batch):
    """Cross-entropy over the last dimension, -100 ignored; summed over `num_items_in_batch` when the Trainer gives it
    (so that gradient accumulation weighs every token alike), averaged otherwise."""
    reduction = "mean" if num_items_in_batch is None else "sum"
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1).to(logits.device),
        ignore_index=-100,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )
    if num_items_in_batch is not None:
        loss = loss / num_items_in_batch
    return loss


__all__ = [
    "MultitaskBertPreTrainedModel",
    "MultitaskBertModel",
    "MultitaskBertForSequenceClassification",
    "MultitaskBertForConditionalGeneration",
    "MultitaskBertOutput",
]
