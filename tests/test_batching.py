"""Batch orders: i.i.d. permutations, class-restricted batches (composition, determinism, frequencies) and
the fixed order of Ziaee & Cano (the same first K batches every epoch)."""

from __future__ import annotations

import collections

import pytest
import torch

from normbench.batching import BatchOrder, ClassBatchOrder, FixedBatchOrder, batch_order, data_order_generator


def _labels(counts):
    """Labels with ``counts[c]`` samples of class c, interleaved (not sorted by class)."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(99))]


@pytest.mark.parametrize("k,batch_size", [(1, 8), (2, 8), (3, 8), (4, 4)])
def test_every_batch_holds_exactly_k_classes_in_even_shares(k, batch_size):
    labels = _labels([30, 25, 40, 35, 20])
    order = ClassBatchOrder(labels, batch_size, seed=0, classes_per_batch=k)
    share, extra = divmod(batch_size, k)
    for _ in range(60):
        idx = order.next()
        assert len(idx) == batch_size and len(set(idx.tolist())) == batch_size  # no repeats in a batch
        counts = collections.Counter(labels[idx].tolist())
        assert len(counts) == k
        assert sorted(counts.values(), reverse=True) == [share + 1] * extra + [share] * (k - extra)


def test_same_seed_same_batches_other_seed_other_batches_and_no_global_rng():
    labels = _labels([20, 20, 20])
    torch.manual_seed(5)
    before = torch.get_rng_state()
    first = [ClassBatchOrder(labels, 6, seed=3, classes_per_batch=2).next() for _ in range(1)]
    a, b, c = (ClassBatchOrder(labels, 6, seed=s, classes_per_batch=2) for s in (3, 3, 4))
    run_a = [a.next() for _ in range(20)]
    assert all(torch.equal(x, y) for x, y in zip(run_a, [b.next() for _ in range(20)]))
    assert not all(torch.equal(x, y) for x, y in zip(run_a, [c.next() for _ in range(20)]))
    assert torch.equal(first[0], run_a[0])
    assert torch.equal(torch.get_rng_state(), before)


def test_an_epoch_is_as_many_batches_as_iid_and_epochs_count_up():
    labels = _labels([13, 17, 11])
    iid, sorted_order = BatchOrder(len(labels), 4, seed=0), ClassBatchOrder(labels, 4, seed=0, classes_per_batch=1)
    assert sorted_order.per_epoch == iid.per_epoch == 41 // 4
    epochs = []
    for _ in range(3 * sorted_order.per_epoch + 1):
        sorted_order.next()
        epochs.append(sorted_order.epoch)
    assert epochs[0] == 1 and epochs[sorted_order.per_epoch - 1] == 1
    assert epochs[sorted_order.per_epoch] == 2 and epochs[-1] == 4


def test_samples_are_drawn_equally_often_in_the_long_run_even_with_unequal_classes():
    """Classes are chosen in proportion to their size, so every sample's frequency is about equal."""
    counts = [10, 30, 60]
    labels = _labels(counts)
    order = ClassBatchOrder(labels, 10, seed=1, classes_per_batch=1)
    seen = collections.Counter()
    for _ in range(3000):
        seen.update(order.next().tolist())
    per_sample = torch.tensor([seen[i] for i in range(len(labels))], dtype=torch.float64)
    expected = 3000 * 10 / len(labels)  # 300 draws per sample
    # a queue is used up before it refills, so within a class every sample is drawn once per cycle
    for c in range(3):
        members = per_sample[labels == c]
        assert members.max() - members.min() <= 1
    assert torch.allclose(per_sample.mean(), torch.tensor(expected, dtype=torch.float64))
    class_totals = [float(per_sample[labels == c].sum()) for c in range(3)]
    for c, n in enumerate(counts):
        assert class_totals[c] / 30000 == pytest.approx(n / 100, abs=0.03)


def test_batch_order_picks_the_order_and_refuses_what_cannot_work():
    labels = _labels([5, 5, 5])
    assert isinstance(batch_order({}, labels, 3, seed=0), BatchOrder)
    assert isinstance(batch_order({"classes_per_batch": 2}, labels, 3, seed=0), ClassBatchOrder)
    with pytest.raises(ValueError, match="exceeds the 3 classes"):
        batch_order({"classes_per_batch": 4}, labels, 8, seed=0)
    with pytest.raises(ValueError, match="exceeds the batch size 2"):
        batch_order({"classes_per_batch": 3}, labels, 2, seed=0)
    with pytest.raises(ValueError, match="needs class labels"):
        batch_order({"classes_per_batch": 1}, labels.float(), 3, seed=0, task="regression")
    with pytest.raises(ValueError, match="unknown option"):
        batch_order({"classes": 1}, labels, 3, seed=0)


def test_suite_check_refuses_more_classes_per_batch_than_the_dataset_has(tmp_path):
    import yaml

    from normbench.checks import check_suite
    from normbench.suite import SuiteError, load_suite

    raw = {"name": "b", "dataset": "digits", "models": [{"name": "mlp", "options": {"widths": [8]}}], "norms": ["bn"],
           "batch_sizes": [16], "seeds": 1, "steps": 2, "optimizer": {"lr": 0.1},
           "batching": ["iid", {"classes_per_batch": 12}]}
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(raw))
    suite, _ = load_suite(path)
    with pytest.raises(SuiteError, match=r"field `batching`: classes_per_batch=12 exceeds the 10 classes of 'digits'"):
        check_suite(suite, source=path)
    raw.update(dataset="adding", models=[{"name": "rnn", "options": {"hidden_size": 4}}],
               batching={"classes_per_batch": 1})
    path.write_text(yaml.safe_dump(raw))
    suite, _ = load_suite(path)
    with pytest.raises(SuiteError, match=r"field `batching`: classes_per_batch needs class labels; dataset 'adding'"):
        check_suite(suite, source=path)


def test_fixed_order_repeats_the_same_first_k_batches_of_one_seeded_shuffle():
    order = FixedBatchOrder(n_train=50, batch_size=4, seed=3, samples=20)
    epochs = [[order.next().tolist() for _ in range(order.per_epoch)] for _ in range(3)]
    assert order.per_epoch == 5 and order.epoch == 3
    assert epochs[0] == epochs[1] == epochs[2]
    # independent expectation: the seed's permutation cut into batches of 4, the first 5 of them
    perm = torch.randperm(50, generator=data_order_generator(3)).tolist()
    assert epochs[0] == [perm[i:i + 4] for i in range(0, 20, 4)]
    flat = [i for batch in epochs[0] for i in batch]
    assert len(set(flat)) == 20  # no sample twice in an epoch


def test_fixed_order_without_samples_uses_every_full_batch_and_depends_on_the_seed():
    order = FixedBatchOrder(n_train=10, batch_size=3, seed=0)
    first = [order.next().tolist() for _ in range(3)]
    assert order.per_epoch == 3 and [order.next().tolist() for _ in range(3)] == first
    other = FixedBatchOrder(n_train=10, batch_size=3, seed=1)
    assert [other.next().tolist() for _ in range(3)] != first
    state = torch.random.get_rng_state()
    FixedBatchOrder(n_train=10, batch_size=3, seed=0).next()
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone (pairing)


def test_fixed_order_keeps_k_samples_at_every_batch_size():
    """9,000 samples: 360 batches of 25, 9,000 of 1 - the authors' K at both batch sizes."""
    assert FixedBatchOrder(45000, 25, 0, samples=9000).per_epoch == 360
    assert FixedBatchOrder(45000, 1, 0, samples=9000).per_epoch == 9000


def test_fixed_order_refuses_more_samples_than_exist_or_none_full_batch():
    with pytest.raises(ValueError, match="samples=60 exceeds the 50 training samples"):
        FixedBatchOrder(50, 4, 0, samples=60)
    with pytest.raises(ValueError, match="make no full batch of 4"):
        FixedBatchOrder(50, 4, 0, samples=3)
    labels = torch.zeros(12, dtype=torch.long)
    assert isinstance(batch_order({"order": "fixed"}, labels, 4, 0), FixedBatchOrder)
    assert batch_order({"order": "fixed", "samples": 8}, labels, 4, 0).per_epoch == 2
    with pytest.raises(ValueError, match="unknown option"):
        batch_order({"order": "fixed", "samples": 8, "extra": 1}, labels, 4, 0)
