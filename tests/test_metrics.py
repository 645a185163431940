import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ferkit.metrics import classification_report, confusion_matrix, expected_calibration_error


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=200))
def test_report_matches_brute_force(pairs):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    rep = classification_report(y, p)
    assert rep["accuracy"] == np.mean(y == p)
    cm = confusion_matrix(y, p)
    assert cm.sum() == len(y) and np.trace(cm) == (y == p).sum()
    f1s = []
    for k, r in enumerate(rep["per_class"].values()):
        tp = sum(1 for a, b in pairs if a == k and b == k)
        fp = sum(1 for a, b in pairs if a != k and b == k)
        fn = sum(1 for a, b in pairs if a == k and b != k)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        assert np.isclose(r["precision"], prec) and np.isclose(r["recall"], rec)
        assert r["support"] == tp + fn
        if tp + fn:
            f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    assert np.isclose(rep["macro_f1"], np.mean(f1s))


def test_ece_zero_for_perfectly_calibrated_and_large_for_overconfident():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 5000)
    onehot = np.eye(7)[y]
    assert expected_calibration_error(onehot, y) == 0.0
    wrong = np.eye(7)[(y + 1) % 7]
    assert np.isclose(expected_calibration_error(wrong, y), 1.0)
