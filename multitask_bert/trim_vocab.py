"""Vocabulary trimming: keep the pieces the training data uses, every single-character piece (so that any text still
tokenizes) and the special tokens; rebuild the tokenizer to match, and the model over the same rows
(`MultitaskBertModel.select_vocabulary`).

multilingual-e5's 250,002-piece vocabulary covers a hundred languages; an English–Marathi model uses a few percent of
it, and the output projection over the full vocabulary dominates training and beam search. The trimmed model is an
ordinary model: same classes, same files, same code.

    model, tokenizer, report = trim_vocabulary(model, tokenizer, used_ids)
"""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


@dataclass
class TrimReport:
    pieces_before: int
    pieces_after: int
    kept_from_data: int
    kept_characters: int

    def __str__(self) -> str:
        return (
            f"vocabulary trimmed from {self.pieces_before:,} to {self.pieces_after:,} pieces "
            f"({self.kept_from_data:,} used by the data, {self.kept_characters:,} single characters, specials)"
        )


def unigram_vocab(tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, float]]:
    """(piece, score) in id order, from a SentencePiece-unigram fast tokenizer."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    if model.get("type") != "Unigram":
        raise ValueError(
            f"vocabulary trimming needs a SentencePiece unigram tokenizer (XLM-R, multilingual-e5); this one is "
            f"{model.get('type')!r}"
        )
    return [(piece, score) for piece, score in model["vocab"]]


def pieces_to_keep(tokenizer: PreTrainedTokenizerBase, used_ids: Iterable[int]) -> tuple[list[int], TrimReport]:
    """The ids to keep (those used, every single character, the specials), in increasing order, and a report."""
    vocab = unigram_vocab(tokenizer)
    used = {i for i in used_ids if 0 <= i < len(vocab)}
    characters = {i for i, (piece, _) in enumerate(vocab) if len(piece) == 1}
    specials = set(tokenizer.all_special_ids)
    keep = sorted(used | characters | specials)
    report = TrimReport(len(vocab), len(keep), len(used - specials), len(characters - used - specials))
    return keep, report


def trim_tokenizer(tokenizer: PreTrainedTokenizerBase, keep: list[int]) -> PreTrainedTokenizerBase:
    """The same tokenizer (class, normalizer, pre-tokenizer, special tokens) over the kept pieces only."""
    vocab = unigram_vocab(tokenizer)
    if keep[:4] != [0, 1, 2, 3]:
        raise ValueError("the first four ids (<s>, <pad>, </s>, <unk>) must be kept in place")
    trimmed = type(tokenizer)(vocab=[vocab[i] for i in keep], model_max_length=tokenizer.model_max_length)
    trimmed.backend_tokenizer.normalizer = tokenizer.backend_tokenizer.normalizer
    return trimmed


def trim_vocabulary(model, tokenizer, used_ids: Iterable[int]):
    """Trimmed (model, tokenizer) and a report of what was kept."""
    keep, report = pieces_to_keep(tokenizer, used_ids)
    logger.info("%s", report)
    return model.select_vocabulary(keep), trim_tokenizer(tokenizer, keep), report


def pieces_per_sentence(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> float:
    """Mean number of pieces per sentence, special tokens excluded."""
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) / max(len(texts), 1)
