"""Multi-Fashion builder: placement of the two items, labels, determinism, shapes."""

import numpy as np
import pytest

from multitask.datasets import make_multi_fashion
from multitask.datasets.multi_fashion import overlay_pairs

LEVELS = np.arange(10) * 20 + 40  # class k: a constant image of intensity 40 + 20 k


def _constant_images(n_per_class=3):
    labels = np.repeat(np.arange(10), n_per_class)
    images = np.broadcast_to(LEVELS[labels, None, None], (len(labels), 28, 28))
    return images.astype(np.uint8), labels


def test_items_land_in_their_corners_with_their_labels():
    # canvas rows/cols 0..7 hold only the top-left item and 28..35 only the
    # bottom-right one, so output pixel (0, 0) sees one item and (27, 27) the other
    images, labels = _constant_images()
    X, y = make_multi_fashion(images, labels, 200, seed=3)
    assert np.allclose(X[:, 0, 0, 0], LEVELS[y["top_left"]] / 255.0, atol=1e-6)
    assert np.allclose(X[:, 0, 27, 27], LEVELS[y["bottom_right"]] / 255.0, atol=1e-6)
    assert np.all(y["top_left"] != y["bottom_right"])  # MultiMNIST protocol: classes differ


def test_overlay_places_single_pixels_at_the_scaled_positions():
    a = np.zeros((1, 28, 28), np.uint8)
    b = np.zeros((1, 28, 28), np.uint8)
    a[0, 2, 5] = 255  # canvas (2, 5)
    b[0, 20, 12] = 255  # canvas (28, 20)
    X = overlay_pairs(a, b)[0, 0]
    # a canvas pixel r maps to output coordinate (r + 0.5) * 28 / 36 - 0.5
    rows, cols = np.unravel_index(np.argsort(X, axis=None)[-2:], X.shape)
    peaks = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    expected = sorted(
        tuple(round((r + 0.5) * 28 / 36 - 0.5) for r in rc) for rc in [(2, 5), (28, 20)]
    )
    assert peaks == expected


def test_overlay_equals_torch_antialiased_bilinear_of_the_max_canvas():
    torch = pytest.importorskip("torch")
    from torch.nn import functional as F

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    b = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    canvas = np.zeros((4, 1, 36, 36), np.float32)
    canvas[:, 0, :28, :28] = a / 255.0
    canvas[:, 0, 8:, 8:] = np.maximum(canvas[:, 0, 8:, 8:], b / 255.0)
    ref = F.interpolate(torch.from_numpy(canvas), size=(28, 28), mode="bilinear", antialias=True)
    assert np.allclose(overlay_pairs(a, b), ref.numpy(), atol=1e-5)


def test_deterministic_given_seed_with_shapes_and_dtypes():
    images, labels = _constant_images()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, images.shape).astype(np.uint8)
    X1, y1 = make_multi_fashion(images, labels, 50, seed=7)
    X2, y2 = make_multi_fashion(images, labels, 50, seed=7)
    X3, _ = make_multi_fashion(images, labels, 50, seed=8)
    assert X1.shape == (50, 1, 28, 28) and X1.dtype == np.float32
    assert X1.min() >= 0.0 and X1.max() <= 1.0
    assert set(y1) == {"top_left", "bottom_right"}
    assert all(v.shape == (50,) and v.dtype == np.int64 for v in y1.values())
    assert np.array_equal(X1, X2) and all(np.array_equal(y1[t], y2[t]) for t in y1)
    assert not np.array_equal(X1, X3)


def test_bad_inputs_raise_early():
    images, labels = _constant_images()
    with pytest.raises(ValueError, match="labels"):
        make_multi_fashion(images, labels[:-1], 5)
    with pytest.raises(ValueError, match="two classes"):
        make_multi_fashion(images[:3], labels[:3], 5)
    with pytest.raises(ValueError, match="n_samples"):
        make_multi_fashion(images, labels, 0)


def test_size_36_is_the_canvas_itself():
    """Lin et al.'s code keeps the 36x36 canvas: item a at (0, 0), item b at (8, 8), the
    overlap by the pixel-wise maximum, nothing resampled."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    X = overlay_pairs(a, b, size=36)
    assert X.shape == (2, 1, 36, 36) and X.dtype == np.float32
    want = np.zeros((2, 36, 36), np.float32)
    want[:, :28, :28] = a / np.float32(255)
    want[:, 8:, 8:] = np.maximum(want[:, 8:, 8:], b / np.float32(255))
    np.testing.assert_array_equal(X[:, 0], want)
    labels = np.arange(2)
    X2, y = make_multi_fashion(a, labels, 5, seed=1, size=36)
    assert X2.shape == (5, 1, 36, 36) and set(y) == {"top_left", "bottom_right"}
    with pytest.raises(ValueError, match="size must be between 1 and 36"):
        overlay_pairs(a, b, size=40)
