"""Ridge (squared Frobenius) penalty."""

from __future__ import annotations

import numpy as np

from ._base import SmoothPenalty, check_strength


class Ridge(SmoothPenalty):
    """``alpha * ||W||_F^2`` (no factor 1/2).

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength, ``>= 0``.

    References
    ----------
    Hoerl, A. E. and Kennard, R. W. "Ridge regression: biased estimation for
    nonorthogonal problems." Technometrics, 1970.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")

    def value(self, W):
        """``alpha * ||W||_F^2``."""
        return self.alpha * float(np.sum(np.square(W)))

    def gradient(self, W):
        """``2 * alpha * W``."""
        return 2.0 * self.alpha * np.asarray(W, dtype=float)

    def lipschitz(self):
        """``2 * alpha``."""
        return 2.0 * self.alpha
