"""The loop check: what a decoder that lost its way writes counts, ordinary sentences (numbers, a word said twice)
do not."""

from multitask_bert.metrics import loop_share, loops, translation_scores

LOOPING = [
    "एक ॲड-ऑन-ऑन-ऑन-ऑन-ऑन-ऑन-ऑन्स्, असं म्हणतात.",  # a piece over and over
    "मला माहीत आहे, मला माहीत आहे.",  # three words twice
    "the cat sat, the cat sat, on the mat",  # punctuation at a word's edge does not hide it
]
FINE = [
    "पिक्चर सुंदर होतं.",
    "त्यांना 1000000 रुपये मिळाले.",  # digits alone repeat without looping
    "दुर्लक्ष, जिवंत निरोगी, निरोगी लिहिली.",  # one word twice
    "",
]


def test_loops_tells_looping_output_from_ordinary_sentences():
    assert [loops(t) for t in LOOPING] == [True] * len(LOOPING)
    assert [loops(t) for t in FINE] == [False] * len(FINE)


def test_loop_share_is_a_percent_of_the_outputs():
    assert loop_share(LOOPING[:1] + FINE[:3]) == 25.0
    assert loop_share([]) == 0.0
    scores, signatures = translation_scores(LOOPING[:1] + FINE[:1], ["एक", "पिक्चर सुंदर होतं."])
    assert scores["loops"] == 50.0 and "loops" not in signatures  # not a sacreBLEU score
