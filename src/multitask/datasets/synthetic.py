"""Synthetic multi-task data with known ground truth.

The linear generators draw a weight matrix ``W`` of shape (n_features,
n_tasks) with a chosen structure (shared support, low rank, task clusters, a
task covariance) and targets ``y_t = X_t w_t + noise * eps``, ``eps ~ N(0, 1)``
(or Bernoulli labels with ``P(y = 1) = sigmoid(X_t w_t)`` for
``kind="binary"``). Designs are standard normal. With ``shared_design=False``
(default) every task has its own design and the data comes back in long
format (:class:`~multitask.datasets.MultiTaskData`); with
``shared_design=True`` one design serves all tasks and ``(X, Y)`` comes back,
``Y`` of shape (n_samples, n_tasks), the setting of sklearn's ``MultiTaskLasso``.

Each generator returns ``(data, truth)``; ``truth["W"]`` is the weight matrix,
plus the structure that produced it (support, factors, clusters, covariance).
"""

from __future__ import annotations

import numpy as np

from multitask.datasets._convert import from_arrays

__all__ = [
    "make_clustered",
    "make_low_rank",
    "make_mmoe",
    "make_row_sparse",
    "make_task_covariance",
]


def _sizes(n_samples, n_tasks: int) -> np.ndarray:
    """``n_samples`` (an int, or one per task) as ``(n_tasks,)`` whole numbers >= 1 (a float
    was truncated, 10.7 to 10, and a list of the wrong length failed in numpy's broadcast)."""
    arr = np.asarray(n_samples)
    whole = arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0))
    if isinstance(n_samples, bool) or not whole or arr.ndim > 1 or arr.size not in (1, n_tasks):
        raise ValueError(
            f"n_samples must be an int or one int per task ({n_tasks}), got {n_samples!r}"
        )
    sizes = np.broadcast_to(arr.astype(np.int64).reshape(-1), (n_tasks,)).copy()
    if (sizes < 1).any():
        raise ValueError(f"n_samples must be >= 1 per task, got {n_samples}")
    return sizes


def _targets(Z: np.ndarray, noise: float, kind: str, rng) -> np.ndarray:
    if kind == "regression":
        return Z + noise * rng.standard_normal(Z.shape)
    if kind == "binary":
        return (rng.random(Z.shape) < 1.0 / (1.0 + np.exp(-Z))).astype(np.int64)
    raise ValueError(f"kind={kind!r}; synthetic data supports 'regression' or 'binary'")


def _sample(W: np.ndarray, n_samples, noise: float, shared_design: bool, kind: str, rng, name):
    """Draw designs and targets for the weight matrix ``W`` (n_features, n_tasks)."""
    n_features, n_tasks = W.shape
    if n_tasks < 1:
        raise ValueError(f"n_tasks={n_tasks} must be >= 1")
    if shared_design:
        if np.ndim(n_samples) != 0:
            raise ValueError(
                f"with shared_design=True every task has the same rows: n_samples is one int, "
                f"got {n_samples!r}"
            )
        X = rng.standard_normal((int(_sizes(n_samples, 1)[0]), n_features))
        return X, _targets(X @ W, noise, kind, rng)
    sizes = _sizes(n_samples, n_tasks)
    X_all = rng.standard_normal((int(sizes.sum()), n_features))
    task = np.repeat(np.arange(n_tasks), sizes)
    Z = np.einsum("ij,ji->i", X_all, W[:, task])  # row i: x_i . w_{task(i)}
    y = _targets(Z, noise, kind, rng)
    bounds = np.cumsum(sizes)[:-1]
    pairs = list(zip(np.split(X_all, bounds), np.split(y, bounds), strict=True))
    return from_arrays(pairs, kind=kind, name=name, description="synthetic: " + name)


def make_row_sparse(
    n_samples=50,
    n_features: int = 30,
    n_tasks: int = 5,
    n_relevant: int = 5,
    *,
    noise: float = 0.1,
    shared_design: bool = False,
    kind: str = "regression",
    seed: int = 0,
):
    """Tasks sharing one support: ``n_relevant`` nonzero rows of ``W``.

    Parameters
    ----------
    n_samples : int or sequence of int
        Rows per task (per-task designs; a sequence gives unequal tasks), or
        rows of the shared design.
    n_features, n_tasks, n_relevant : int
    noise : float, default=0.1
        Standard deviation of the Gaussian noise (regression).
    shared_design : bool, default=False
    kind : {"regression", "binary"}, default="regression"
    seed : int, default=0

    Returns
    -------
    data : MultiTaskData, or (X, Y) if ``shared_design``
    truth : dict
        ``W`` (n_features, n_tasks) and ``support`` (sorted row indices).

    References
    ----------
    Obozinski, Taskar & Jordan (2010), Joint covariate selection and joint
    subspace selection for multiple classification problems, Statistics and
    Computing 20:231-252 (the L1/L2 joint-support model).
    """
    if not 0 < n_relevant <= n_features:
        raise ValueError(f"n_relevant={n_relevant} must be in [1, n_features={n_features}]")
    rng = np.random.default_rng(seed)
    support = np.sort(rng.choice(n_features, n_relevant, replace=False))
    W = np.zeros((n_features, n_tasks))
    W[support] = rng.standard_normal((n_relevant, n_tasks))
    data = _sample(W, n_samples, noise, shared_design, kind, rng, "row_sparse")
    return data, {"W": W, "support": support}


def make_low_rank(
    n_samples=50,
    n_features: int = 30,
    n_tasks: int = 10,
    rank: int = 2,
    *,
    noise: float = 0.1,
    shared_design: bool = False,
    kind: str = "regression",
    seed: int = 0,
):
    """Weights in a ``rank``-dimensional subspace: ``W = U V^T``.

    ``U`` (n_features, rank) and ``V`` (n_tasks, rank) are standard normal,
    ``V`` scaled by ``1 / sqrt(rank)`` so each weight has unit variance.
    Other parameters as in :func:`make_row_sparse`.

    Returns
    -------
    data : MultiTaskData, or (X, Y) if ``shared_design``
    truth : dict
        ``W``, ``U``, ``V``.

    References
    ----------
    Ando & Zhang (2005), A framework for learning predictive structures from
    multiple tasks and unlabeled data, JMLR 6:1817-1853; Pong, Tseng, Ji & Ye
    (2010), Trace norm regularization, SIAM J. Optim. 20(6):3465-3489.
    """
    if not 1 <= rank <= min(n_features, n_tasks):
        raise ValueError(f"rank={rank} must be in [1, min(n_features, n_tasks)]")
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_features, rank))
    V = rng.standard_normal((n_tasks, rank)) / np.sqrt(rank)
    W = U @ V.T
    data = _sample(W, n_samples, noise, shared_design, kind, rng, "low_rank")
    return data, {"W": W, "U": U, "V": V}


def make_clustered(
    n_samples=50,
    n_features: int = 30,
    n_tasks: int = 12,
    n_clusters: int = 3,
    *,
    cluster_std: float = 0.1,
    noise: float = 0.1,
    shared_design: bool = False,
    kind: str = "regression",
    seed: int = 0,
):
    """Tasks in clusters: ``w_t = center_{c(t)} + cluster_std * N(0, I)``.

    Clusters are balanced (task ``t`` in cluster ``t mod n_clusters`` before a
    random permutation); centers are standard normal.

    Returns
    -------
    data : MultiTaskData, or (X, Y) if ``shared_design``
    truth : dict
        ``W``, ``clusters`` (n_tasks,) and ``centers`` (n_features, n_clusters).

    References
    ----------
    Jacob, Bach & Vert (2008), Clustered multi-task learning: a convex
    formulation, NeurIPS 21; Zhou, Chen & Ye (2011), Clustered multi-task
    learning via alternating structure optimization, NeurIPS 24.
    """
    if not 1 <= n_clusters <= n_tasks:
        raise ValueError(f"n_clusters={n_clusters} must be in [1, n_tasks={n_tasks}]")
    rng = np.random.default_rng(seed)
    clusters = rng.permutation(np.arange(n_tasks) % n_clusters)
    centers = rng.standard_normal((n_features, n_clusters))
    W = centers[:, clusters] + cluster_std * rng.standard_normal((n_features, n_tasks))
    data = _sample(W, n_samples, noise, shared_design, kind, rng, "clustered")
    return data, {"W": W, "clusters": clusters, "centers": centers}


def make_task_covariance(
    cov,
    n_samples=50,
    n_features: int = 30,
    *,
    noise: float = 0.1,
    shared_design: bool = False,
    kind: str = "regression",
    seed: int = 0,
):
    """Weights whose rows are drawn ``W[j, :] ~ N(0, cov)`` i.i.d. over features.

    Parameters
    ----------
    cov : array-like of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite task covariance (the matrix
        ``Omega`` of multi-task relationship learning).

    Returns
    -------
    data : MultiTaskData, or (X, Y) if ``shared_design``
    truth : dict
        ``W`` and ``cov``.

    References
    ----------
    Zhang & Yeung (2010), A convex formulation for learning task relationships
    in multi-task learning, UAI (the matrix-variate prior ``W ~ MN(0, I, Omega)``).
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or not np.allclose(cov, cov.T):
        raise ValueError(f"cov must be a symmetric square matrix, got shape {cov.shape}")
    vals, vecs = np.linalg.eigh(cov)
    if vals.min() < -1e-10 * max(1.0, vals.max()):
        raise ValueError(
            f"cov must be positive semi-definite; smallest eigenvalue {vals.min():.3g}"
        )
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))  # root @ root.T == cov
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_features, cov.shape[0])) @ root.T
    data = _sample(W, n_samples, noise, shared_design, kind, rng, "task_covariance")
    return data, {"W": W, "cov": cov}


def make_mmoe(
    n_samples: int,
    n_features: int = 100,
    correlation: float = 0.5,
    n_tasks: int = 2,
    m: int = 10,
    c: float = 1.0,
    seed: int = 0,
    *,
    alpha=None,
    beta=None,
    return_truth: bool = False,
):
    """Regression tasks with a controlled correlation (Ma et al., KDD 2018, Sec. 3.2).

    1. Draw orthonormal ``u_1, ..., u_K`` in R^d (QR of a Gaussian matrix).
    2. ``w_1 = c u_1``; ``w_k = c (p u_1 + sqrt(1 - p^2) u_k)`` for ``k >= 2``.
    3. Draw ``x ~ N(0, I_d)``.
    4. ``y_k = w_k^T x + sum_{i=1}^m sin(alpha_i w_k^T x + beta_i) + eps_k``,
       ``eps_k ~ N(0, 0.01)`` (variance 0.01, standard deviation 0.1).

    The Pearson correlation of the linear parts ``w_1^T x`` and ``w_k^T x`` is
    the cosine of ``w_1, w_k``, which is ``p``. The paper gives ``alpha_i,
    beta_i`` as fixed parameters without values; here they are drawn once
    from ``N(0, 1)`` with the seed, shared by all tasks as in the paper. With
    ``n_tasks > 2`` (an extension; the paper has two), task pairs ``(1, k)``
    have correlation ``p`` and pairs ``(j, k)``, ``j, k >= 2``, have ``p^2``.

    Parameters
    ----------
    n_samples : int
    n_features : int, default=100
        The input dimension ``d``.
    correlation : float in [-1, 1], default=0.5
        The task correlation ``p``: that of the linear parts, as in the paper. The labels'
        own Pearson correlation also depends on the sine terms, whose ``alpha_i, beta_i``
        the seed draws: at ``p = 0.5`` it read 0.11 to 0.48 over seeds 0-5, and at
        ``p = -1`` from -0.98 to +0.60 (20,000 samples). Compare ``p``'s with one seed.
    n_tasks : int, default=2
    m : int, default=10
        Number of sine terms.
    c : float, default=1.0
        Scale of the weights.
    seed : int, default=0
    alpha, beta : array-like of shape (m,), optional
        The sine parameters; default drawn from ``N(0, 1)`` with the seed.
    return_truth : bool, default=False
        Also return ``{"U", "W", "alpha", "beta"}`` (``U``, ``W`` of shape
        (n_features, n_tasks)).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_tasks)

    References
    ----------
    Ma, Zhao, Yi, Chen, Hong & Chi (2018), Modeling task relationships in
    multi-task learning with multi-gate mixture-of-experts, KDD, Sec. 3.2.
    """
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation={correlation} must be in [-1, 1]")
    if not 2 <= n_tasks <= n_features:
        raise ValueError(f"n_tasks={n_tasks} must be in [2, n_features={n_features}]")
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n_features, n_tasks)))
    W = np.empty_like(U)
    W[:, 0] = c * U[:, 0]
    W[:, 1:] = c * (correlation * U[:, [0]] + np.sqrt(1.0 - correlation**2) * U[:, 1:])
    alpha_beta = rng.standard_normal((2, m))
    alpha = alpha_beta[0] if alpha is None else np.asarray(alpha, dtype=np.float64)
    beta = alpha_beta[1] if beta is None else np.asarray(beta, dtype=np.float64)
    if alpha.shape != (m,) or beta.shape != (m,):
        raise ValueError(f"alpha and beta must have shape ({m},), got {alpha.shape}, {beta.shape}")
    X = rng.standard_normal((n_samples, n_features))
    Z = X @ W  # (n_samples, n_tasks): linear parts
    Y = Z + np.sin(Z[..., None] * alpha + beta).sum(axis=-1)
    Y += 0.1 * rng.standard_normal(Y.shape)
    if return_truth:
        return X, Y, {"U": U, "W": W, "alpha": alpha, "beta": beta}
    return X, Y
