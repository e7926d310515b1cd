"""Anchor fit: best possible recall, k-means + evolution, the check the engine runs before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from surgtui.data.formats import ImageRecord  # noqa: E402
from surgtui.engine.anchors import best_possible_recall, check_anchors, dataset_wh, kmean_anchors  # noqa: E402
from surgtui.engine.model import ANCHORS_640  # noqa: E402

PRIORS = torch.tensor(ANCHORS_640, dtype=torch.float32) * 0.5  # the model's priors at img_size 320
# Thin, long needles and flat drivers: far outside the COCO priors' 1:4 side ratios.
CLUSTERS = np.array([[4.0, 160.0], [200.0, 8.0], [16.0, 300.0]])


def clustered(n: int = 300, seed: int = 0) -> np.ndarray:
    """`n` boxes around each of CLUSTERS, sides scattered by 1 % (at most 3 %)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([c * rng.normal(1, 0.01, (n, 2)).clip(0.97, 1.03) for c in CLUSTERS]).astype(
        np.float32
    )


class Log(list):
    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))


def test_bpr_is_one_for_boxes_equal_to_the_anchors_and_drops_for_boxes_far_larger():
    wh = PRIORS.view(-1, 2)
    bpr, aat = best_possible_recall(wh, PRIORS, 4.0)
    assert bpr == 1.0 and aat >= 1.0
    huge = wh * 10 * PRIORS.max() / wh.min()  # 10x larger than every anchor on both sides
    assert best_possible_recall(huge, PRIORS, 4.0) == (0.0, 0.0)
    assert best_possible_recall(torch.cat((wh, huge)), PRIORS, 4.0)[0] == 0.5
    # One anchor [10, 10]: a 30 x 10 box is within a ratio of 4, not of 2; anchor_t = 0 checks at 4.
    box, one = np.array([[30.0, 10.0]]), np.array([[10.0, 10.0]])
    assert best_possible_recall(box, one, 4.0)[0] == 1.0 and best_possible_recall(box, one, 2.0)[0] == 0.0
    assert best_possible_recall(box, one, 0.0)[0] == 1.0


def test_kmeans_recovers_tight_clusters_and_raises_bpr():
    wh = clustered()
    assert best_possible_recall(wh, PRIORS, 4.0)[0] < 0.9
    k = kmean_anchors(wh, n=9, img_size=320, thr=4.0, gen=300)
    assert k.shape == (9, 2) and k.dtype == np.float32
    assert np.all(np.diff(k.prod(1)) >= 0)  # smallest area first
    for c in CLUSTERS:  # every cluster has an anchor within 15 % on both sides
        assert (np.abs(k / c - 1) < 0.15).all(1).any(), (c, k)
    assert best_possible_recall(wh, k, 4.0)[0] >= 0.98
    assert np.array_equal(
        k, kmean_anchors(wh, n=9, img_size=320, thr=4.0, gen=300)
    )  # same seed, same anchors


def test_kmeans_on_five_thousand_boxes_is_fast():
    import time

    rng = np.random.default_rng(1)
    wh = np.exp(rng.normal(np.log([30, 40]), 0.8, (5000, 2))).astype(np.float32)
    t = time.perf_counter()
    k = kmean_anchors(wh, img_size=320)
    assert time.perf_counter() - t < 2.0
    assert best_possible_recall(wh, k, 4.0)[0] >= best_possible_recall(wh, PRIORS, 4.0)[0]


def test_check_keeps_fitting_priors_and_says_so():
    log = Log()
    assert check_anchors(PRIORS.view(-1, 2).repeat(10, 1), PRIORS, 4.0, True, log) is None
    assert len(log) == 1 and log[0][0] == "info"
    assert log[0][1].startswith("anchors: best possible recall 1.000 (") and "/box above 1/4)" in log[0][1]
    assert log[0][1].endswith("with the current priors")


def test_check_fits_new_anchors_when_the_priors_do_not_fit():
    log = Log()
    new = check_anchors(clustered(), PRIORS, 4.0, True, log)
    assert isinstance(new, torch.Tensor) and new.shape == (3, 3, 2) and new.dtype == torch.float32
    areas = new.prod(2).flatten()
    assert torch.all(areas[1:] >= areas[:-1])  # stride 8 gets the smallest, stride 32 the largest
    assert best_possible_recall(clustered(), new, 4.0)[0] >= 0.98
    assert [level for level, _ in log] == ["info", "info"]
    assert "fitted anchors reach best possible recall" in log[1][1]


def test_check_warns_when_autoanchor_is_off():
    log = Log()
    assert check_anchors(clustered(), PRIORS, 4.0, False, log) is None
    assert log[-1][0] == "warning" and "model.autoanchor = true" in log[-1][1]


def test_dataset_wh_is_at_input_scale_with_a_fixed_random_scale_per_image():
    boxes = np.array([[0, 0, 100, 50], [10, 10, 30, 50]], np.float32)
    records = [ImageRecord(i, Path(f"{i}.jpg"), 640, 320, boxes, np.zeros(2, np.int64)) for i in range(20)]
    wh = dataset_wh(records, 320)  # letterbox scale 320 / 640
    assert wh.shape == (40, 2)
    base = np.tile([[50.0, 25.0], [10.0, 20.0]], (20, 1))
    factor = wh / base
    assert np.all((factor > 0.9 - 1e-6) & (factor < 1.1 + 1e-6))
    per_image = factor.reshape(20, 4)
    assert np.allclose(per_image, per_image[:, :1])  # one factor per image
    assert np.ptp(factor) > 0.05
    assert np.array_equal(wh, dataset_wh(records, 320))
    assert dataset_wh([], 320).shape == (0, 2)
