"""Scores as pure functions: predictions and references in, the scores and the signatures that say how they were
computed out (as `run_translation.py`'s `compute_metrics`), so that training, the evaluation command and tests compute
the same numbers.

Translation scores are sacreBLEU's (BLEU with its default 13a tokenizer, chrF, chrF++) with their signatures, so that
figures compare with published ones; sentiment scores are scikit-learn's accuracy and macro-F1.

The same file is a local `evaluate` metric module, loaded by its path (offline too, `HF_EVALUATE_OFFLINE=1`):

    # config_name "translation" or "sentiment"; none: the type of the input tells it
    scorer = evaluate.load("multitask_bert/metrics.py", config_name="translation")
    scorer.compute(predictions=hypotheses, references=references)
    # {'bleu': 12.3, 'chrf': 40.1, 'chrfpp': 38.2, 'signatures': {'bleu': 'nrefs:1|case:mixed|...', ...}}

`evaluate` copies this file into its modules cache and imports it there: it may import installed packages only, never
another module of this project.
"""

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
    """sacreBLEU BLEU, chrF and chrF++ (0-100), and the signature of each."""
    metrics = {"bleu": sacrebleu.BLEU(), "chrf": sacrebleu.CHRF(), "chrfpp": sacrebleu.CHRF(word_order=2)}
    scores = {name: round(metric.corpus_score(hypotheses, [references]).score, 2) for name, metric in metrics.items()}
    return scores, {name: str(metric.get_signature()) for name, metric in metrics.items()}


# ---- the `evaluate` module -----------------------------------------------------------------------------------------

SCORES = {"translation": translation_scores, "sentiment": sentiment_scores}
# Translation first: a list of texts never passes as class ids, whereas class ids would pass as text.
FEATURES = {
    "translation": datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    "sentiment": datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
}

DESCRIPTION = (
    "The scores of multitask-bert: sentiment accuracy and macro-F1 (scikit-learn), translation BLEU (13a), chrF and "
    "chrF++ (sacreBLEU), with sacreBLEU's signatures."
)
INPUTS = """
Args:
    predictions: class ids (sentiment) or translations (translation), one per row.
    references: class ids or reference translations, one per row, in the same order.
Returns:
    sentiment: {"accuracy": 0-1, "f1": 0-1 (macro)}.
    translation: {"bleu", "chrf", "chrfpp": 0-100, "signatures": {"bleu", "chrf", "chrfpp": sacreBLEU's signature}}.
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
