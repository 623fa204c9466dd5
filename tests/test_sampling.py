"""Task sampling: one task per batch, the proportions each strategy promises, determinism, length grouping."""

from collections import Counter

import pytest
from datasets import Dataset

from multitask_bert.sampling import MultitaskBatchSampler, MultitaskDataset, task_shares


def dataset(n_sentiment: int, n_translation: int) -> MultitaskDataset:
    def rows(n, seed):
        return Dataset.from_dict({"input_ids": [[1] * (1 + (i * seed) % 37) for i in range(n)]})

    return MultitaskDataset({"sentiment": rows(n_sentiment, 7), "translation": rows(n_translation, 11)})


def task_of(data: MultitaskDataset, batch: list[int]) -> str:
    tasks = {data[i]["task"] for i in batch}
    assert len(tasks) == 1, "a batch mixes tasks"
    return tasks.pop()


def test_proportional_visits_every_example_once_per_epoch():
    data = dataset(900, 100)
    sampler = MultitaskBatchSampler(data, batch_size=10, sampling="proportional")
    batches = list(sampler)
    assert len(batches) == len(sampler) == 100
    assert Counter(task_of(data, b) for b in batches) == {"sentiment": 90, "translation": 10}
    assert sorted(i for b in batches for i in b) == list(range(1000))


def test_temperature_sampling_follows_n_to_the_one_over_t():
    data = dataset(900, 100)
    sampler = MultitaskBatchSampler(data, batch_size=1, sampling="temperature", temperature=2.0)
    expected = 100**0.5 / (900**0.5 + 100**0.5)  # 0.25, against 0.10 proportionally
    assert sampler.task_probabilities()["translation"] == pytest.approx(expected)
    counts = Counter(task_of(data, b) for b in sampler)
    share = counts["translation"] / sum(counts.values())
    assert abs(share - expected) < 0.04  # 1000 draws: 3 standard deviations is 0.041


def test_temperature_one_is_proportional_in_expectation():
    sampler = MultitaskBatchSampler(dataset(900, 100), batch_size=1, sampling="temperature", temperature=1.0)
    assert sampler.task_probabilities()["translation"] == pytest.approx(0.1)


def test_round_robin_alternates():
    data = dataset(50, 10)
    batches = list(MultitaskBatchSampler(data, batch_size=5, sampling="round_robin"))
    assert [task_of(data, b) for b in batches[:6]] == ["sentiment", "translation"] * 3
    # the smaller task starts a new pass instead of running dry
    assert Counter(task_of(data, b) for b in batches) == {"sentiment": 6, "translation": 6}


def test_same_seed_and_epoch_same_batches_other_epoch_other_batches():
    data = dataset(60, 40)
    a = MultitaskBatchSampler(data, batch_size=4, seed=3)
    b = MultitaskBatchSampler(data, batch_size=4, seed=3)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_length_grouping_cuts_padding():
    data = dataset(400, 400)
    lengths = {
        **dict(enumerate(data.lengths("sentiment"))),
        **{400 + i: n for i, n in enumerate(data.lengths("translation"))},
    }

    def padding(sampler):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in sampler)

    grouped = MultitaskBatchSampler(data, batch_size=8, group_by_length=True)
    shuffled = MultitaskBatchSampler(data, batch_size=8, group_by_length=False)
    assert padding(grouped) < 0.2 * padding(shuffled)


def test_source_weights_repeat_and_subsample_each_pass():
    rows = Dataset.from_dict({"input_ids": [[1] * (1 + i % 5) for i in range(30)]})
    # translation: a first source of 10 rows seen twice per pass, a second of 20 rows seen at a quarter (5 rows)
    data = MultitaskDataset({"translation": rows}, source_weights={"translation": [(10, 2.0), (20, 0.25)]})
    assert data.pass_size("translation") == 25
    sampler = MultitaskBatchSampler(data, batch_size=5, sampling="proportional")
    assert len(sampler) == 5
    seen = [Counter(i for b in sampler for i in b) for sampler.epoch in (0, 1)]
    for counts in seen:
        assert all(counts[i] == 2 for i in range(10))  # the first source twice
        second = [i for i in counts if i >= 10]
        assert len(second) == 5 and all(counts[i] == 1 for i in second)  # a quarter of the second, once each
    # a fresh quarter every pass: the four passes of epochs 0 to 3 show each of its rows once
    quarters = [{i for b in sampler for i in b if i >= 10} for sampler.epoch in range(4)]
    assert all(len(q) == 5 for q in quarters) and set().union(*quarters) == set(range(10, 30))


def test_other_seeds_give_other_batches_at_every_epoch():
    """Seed s at epoch 1 is no copy of seed s + 1 at epoch 0: runs of neighbouring seeds are not one run shifted."""
    data = dataset(60, 40)
    one, two = MultitaskBatchSampler(data, batch_size=4, seed=0), MultitaskBatchSampler(data, batch_size=4, seed=1)
    one.set_epoch(1)
    assert list(one) != list(two)


def test_a_task_whose_weighted_pass_is_empty_is_refused():
    """10 rows at weight 0.05 make no example a pass: the task would train nothing, or fail at its first batch."""
    rows = Dataset.from_dict({"input_ids": [[1]] * 10})
    with pytest.raises(ValueError, match="one pass over the sentiment data holds no example"):
        MultitaskDataset({"sentiment": rows}, source_weights={"sentiment": [(10, 0.05)]})


def test_source_rows_must_add_up():
    rows = Dataset.from_dict({"input_ids": [[1]] * 4})
    with pytest.raises(ValueError, match="do not add up to its 4 rows"):
        MultitaskDataset({"sentiment": rows}, source_weights={"sentiment": [(3, 1.0)]})


@pytest.mark.parametrize("sampling", ["proportional", "temperature", "round_robin"])
def test_task_shares_are_what_the_sampler_draws_by(sampling):
    data = dataset(90, 30)
    sampler = MultitaskBatchSampler(data, batch_size=7, sampling=sampling, temperature=3.0)
    shares = task_shares(data, batch_size=7, sampling=sampling, temperature=3.0)
    assert shares == sampler.task_probabilities() and sum(shares.values()) == pytest.approx(1)
