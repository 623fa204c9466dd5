"""Scores as pure functions: predictions and references in, a dict of scores out (as `run_translation.py`'s
`compute_metrics`), so that training, evaluation commands and tests compute the same numbers.

Translation scores are sacreBLEU's (BLEU with its default 13a tokenizer, chrF, chrF++) with their signatures, so that
figures compare with published ones.
"""

import sacrebleu
from sklearn.metrics import accuracy_score, f1_score

# The score of each task that enters the combined score (one 0-100 scale) that chooses the best checkpoint.
PRIMARY = {"sentiment": ("accuracy", 100.0), "translation": ("chrfpp", 1.0)}


def sentiment_scores(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Accuracy and macro-F1 (0-1)."""
    return {
        "accuracy": round(float(accuracy_score(references, predictions)), 4),
        "f1": round(float(f1_score(references, predictions, average="macro")), 4),
    }


def translation_scores(hypotheses: list[str], references: list[str]) -> tuple[dict[str, float], dict[str, str]]:
    """sacreBLEU BLEU, chrF and chrF++ (0-100), and the signature of each."""
    metrics = {"bleu": sacrebleu.BLEU(), "chrf": sacrebleu.CHRF(), "chrfpp": sacrebleu.CHRF(word_order=2)}
    scores = {name: round(metric.corpus_score(hypotheses, [references]).score, 2) for name, metric in metrics.items()}
    return scores, {name: str(metric.get_signature()) for name, metric in metrics.items()}


def combined_score(task_scores: dict[str, list[dict[str, float]]]) -> float:
    """Mean over tasks of each task's primary score (mean over its sets), on one 0-100 scale."""
    per_task = []
    for task, sets in task_scores.items():
        name, scale = PRIMARY[task]
        per_task.append(sum(scale * s[name] for s in sets) / len(sets))
    return round(sum(per_task) / len(per_task), 4)
