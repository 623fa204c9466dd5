"""Scores as pure functions: predictions and references in, the scores and the signatures that say how they were
computed out (as `run_translation.py`'s `compute_metrics`), so that training, the evaluation command and tests compute
the same numbers.

Translation scores are sacreBLEU's (BLEU with its default 13a tokenizer, chrF, chrF++) with their signatures, so that
figures compare with published ones, and the share of outputs that loop (`loops`, the failure a corpus score hides);
sentiment scores are scikit-learn's accuracy and macro-F1.

The same file is a local `evaluate` metric module, loaded by its path (offline too, `HF_EVALUATE_OFFLINE=1`):

    # config_name "translation" or "sentiment"; none: the type of the input tells it
    scorer = evaluate.load("multitask_bert/metrics.py", config_name="translation")
    scorer.compute(predictions=hypotheses, references=references)
    # {'bleu': 12.3, 'chrf': 40.1, 'chrfpp': 38.2, 'loops': 0.5, 'signatures': {'bleu': 'nrefs:1|case:mixed|...', ...}}

`evaluate` copies this file into its modules cache and imports it there: it may import installed packages only, never
another module of this project.
"""

import re
import unicodedata

import datasets
import evaluate
import sacrebleu
from sklearn.metrics import accuracy_score, f1_score


def sentiment_scores(predictions: list[int], references: list[int]) -> tuple[dict[str, float], dict[str, str]]:
    """Accuracy and macro-F1 (0-1); scikit-learn's scores carry no signature."""
    scores = {
        "accuracy": round(float(accuracy_score(references, predictions)), 4),
        "f1": round(float(f1_score(references, predictions, average="macro")), 4),
    }
    return scores, {}


def translation_scores(hypotheses: list[str], references: list[str]) -> tuple[dict[str, float], dict[str, str]]:
    """sacreBLEU BLEU, chrF and chrF++ (0-100) with the signature of each, and the percent of outputs that loop."""
    metrics = {"bleu": sacrebleu.BLEU(), "chrf": sacrebleu.CHRF(), "chrfpp": sacrebleu.CHRF(word_order=2)}
    scores = {name: round(metric.corpus_score(hypotheses, [references]).score, 2) for name, metric in metrics.items()}
    scores["loops"] = loop_share(hypotheses)
    return scores, {name: str(metric.get_signature()) for name, metric in metrics.items()}


# A run of two or more characters three times in a row: "ऑन-ऑन-ऑन", "ला ला ला".
REPEATED_RUN = re.compile(r"(.{2,}?)\1{2,}", re.DOTALL)


def loops(text: str) -> bool:
    """Whether a translation repeats itself as a decoder does when it loses its way: a run of characters with a letter
    in it three times in a row (digits alone are not a loop: "1000000"), or a sequence of three words twice."""
    if any(any(c.isalpha() for c in m.group(1)) for m in REPEATED_RUN.finditer(text)):
        return True
    words = [bare(word) for word in text.split()]
    trigrams = list(zip(words, words[1:], words[2:]))
    return len(set(trigrams)) < len(trigrams)


def bare(word: str) -> str:
    """The word without punctuation at its edges ("‘बात’," -> "बात")."""
    edges = [i for i, c in enumerate(word) if not unicodedata.category(c).startswith("P")]
    return word[edges[0] : edges[-1] + 1] if edges else ""


def loop_share(hypotheses: list[str]) -> float:
    """Percent of the outputs that loop (0-100)."""
    return round(100 * sum(map(loops, hypotheses)) / max(len(hypotheses), 1), 2)


# ---- the `evaluate` module -----------------------------------------------------------------------------------------

SCORES = {"translation": translation_scores, "sentiment": sentiment_scores}
# Translation first: a list of texts never passes as class ids, whereas class ids would pass as text.
FEATURES = {
    "translation": datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    "sentiment": datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
}

DESCRIPTION = (
    "The scores of multitask-bert: sentiment accuracy and macro-F1 (scikit-learn), translation BLEU (13a), chrF and "
    "chrF++ (sacreBLEU), with sacreBLEU's signatures, and the percent of translations that loop."
)
INPUTS = """
Args:
    predictions: class ids (sentiment) or translations (translation), one per row.
    references: class ids or reference translations, one per row, in the same order.
Returns:
    sentiment: {"accuracy": 0-1, "f1": 0-1 (macro)}.
    translation: {"bleu", "chrf", "chrfpp": 0-100, "loops": percent of outputs that repeat themselves,
        "signatures": {"bleu", "chrf", "chrfpp": sacreBLEU's signature}}.
"""
CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""


class MultitaskMetrics(evaluate.Metric):
    """`config_name` "sentiment" or "translation" fixes the task; without one, the type of the input tells it (class
    ids: sentiment, texts: translation)."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in (*FEATURES, "default"):
            raise ValueError(f"metrics.py: config_name must be one of {', '.join(FEATURES)}, got {self.config_name!r}")
        return evaluate.MetricInfo(
            description=DESCRIPTION,
            citation=CITATION,
            inputs_description=INPUTS,
            features=FEATURES.get(self.config_name, list(FEATURES.values())),
            reference_urls=["https://github.com/mjpost/sacrebleu", "https://scikit-learn.org"],
        )

    def _compute(self, predictions=None, references=None) -> dict:
        task = self.config_name if self.config_name in FEATURES else task_of(predictions)
        scores, signatures = SCORES[task](list(predictions), list(references))
        return {**scores, "signatures": signatures} if signatures else scores


def task_of(predictions: list) -> str:
    return "translation" if predictions and isinstance(predictions[0], str) else "sentiment"
