"""Row-wise projections onto the simplex and the l1 ball (sort-based)."""

from __future__ import annotations

import numpy as np


def simplex_threshold(Z: np.ndarray, radius: float) -> np.ndarray:
    """Shift ``theta`` per row with ``proj_{simplex(radius)}(z) = max(z - theta, 0)``.

    Parameters
    ----------
    Z : ndarray of shape (n_rows, k)
    radius : float or ndarray of shape (n_rows,)
        Radius ``r > 0`` of the simplex ``{x >= 0, sum x = r}`` (one per row if an array).

    Returns
    -------
    theta : ndarray of shape (n_rows,)

    References
    ----------
    Duchi, J., Shalev-Shwartz, S., Singer, Y. and Chandra, T. "Efficient projections
    onto the l1-ball for learning in high dimensions." ICML, 2008, Sec. 3
    (sort-based projection onto the simplex, O(k log k) per row).
    """
    U = -np.sort(-Z, axis=-1)  # rows sorted in decreasing order
    radius = np.asarray(radius, dtype=float)
    css = np.cumsum(U, axis=-1) - (radius[:, None] if radius.ndim else radius)
    ranks = np.arange(1, Z.shape[-1] + 1)
    positive = U - css / ranks > 0
    # `positive` is True then False along a row: rho is the last True position
    rho = Z.shape[-1] - 1 - np.argmax(positive[:, ::-1], axis=-1)
    theta = css[np.arange(Z.shape[0]), rho] / (rho + 1)
    # radius == 0 leaves every row without a True: the projection is 0, theta = max z
    return np.where(positive.any(axis=-1), theta, U[:, 0])


def l1_ball_threshold(V: np.ndarray, radius: float) -> np.ndarray:
    """Threshold ``tau >= 0`` per row with ``proj_{radius B_1}(v) = S_tau(v)``.

    ``S_tau`` is soft-thresholding; ``tau = 0`` for rows already inside the ball.

    Parameters
    ----------
    V : ndarray of shape (n_rows, k)
    radius : float >= 0, or ndarray of shape (n_rows,)
        One radius for all rows, or one per row.

    Returns
    -------
    tau : ndarray of shape (n_rows,)
    """
    absV = np.abs(V)
    tau = np.zeros(V.shape[0])
    outside = absV.sum(axis=-1) > radius  # rows inside the ball keep tau = 0: no sort
    if outside.any():
        r = radius[outside] if np.ndim(radius) else radius
        tau[outside] = np.maximum(simplex_threshold(absV[outside], r), 0.0)
    return tau
