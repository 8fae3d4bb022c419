"""Base classes and shared checks of the penalties of the classical half."""

from __future__ import annotations

import numbers

import numpy as np


def check_strength(value, name: str) -> float:
    """Return ``value`` as a float after checking that it is finite and >= 0.

    Raises
    ------
    ValueError
        If ``value`` is not a real number, is negative, or is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a non-negative real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(
            f"{name} must be finite and >= 0, got {value!r}; use {name}=0 to switch this term off"
        )
    return value


class Penalty:
    """A non-smooth penalty with a cheap proximal operator.

    The model weight ``W`` has shape ``(n_features, n_tasks)`` (or
    ``(n_components, n_features, n_tasks)`` for composite penalties with
    ``n_components = 2``). A penalty is stateless after construction and never
    mutates its inputs.

    Subclasses implement :meth:`value`, :meth:`prox`, :meth:`subdiff_distance`
    and, where defined, :meth:`alpha_max`.
    """

    #: number of weight components the penalty acts on (2 for "dirty" models)
    n_components: int = 1
    #: True when the penalty is a sum over feature rows of one function of the row
    row_separable: bool = False
    #: True when :meth:`prox` accepts a per-row step of shape ``(n_features, 1)``: the prox
    #: in the row-diagonal metric ``diag(1 / step)`` (variable metric solvers need it)
    row_step: bool = False
    #: True when :meth:`prox` also accepts a step of shape ``(n_features, n_tasks)``, one
    #: per entry (entrywise-separable penalties: the prox in any diagonal metric)
    entry_step: bool = False
    #: names of the constructor parameters shown by ``repr``
    _param_names: tuple[str, ...] = ("alpha",)

    def value(self, W: np.ndarray) -> float:
        """Penalty value at ``W``."""
        raise NotImplementedError

    def prox(self, W: np.ndarray, step: float) -> np.ndarray:
        """``argmin_Z 1/2 ||Z - W||_F^2 + step * value(Z)`` as a new array.

        Where :attr:`row_step` is True, ``step`` may also be an array of shape
        ``(n_features, 1)`` with positive entries: then row ``j`` is the prox of its row
        function at ``step[j]``, which for a row-separable penalty is
        ``argmin_Z 1/2 ||Z - W||_M^2 + value(Z)`` in the metric ``M = diag(1 / step)``.
        """
        raise NotImplementedError

    def subdiff_distance(self, W: np.ndarray, grad: np.ndarray) -> float:
        """Distance from ``-grad`` to the subdifferential of the penalty at ``W``."""
        raise NotImplementedError

    def alpha_max(self, grad0: np.ndarray) -> float:
        """Smallest ``alpha`` for which ``W = 0`` is optimal, given ``grad0``."""
        raise NotImplementedError(f"{type(self).__name__} defines no alpha_max")

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._param_names)
        return f"{type(self).__name__}({params})"


class RowSeparablePenalty(Penalty):
    """A penalty ``sum_j f(W[j, :])`` over the feature rows of ``W``.

    Subclasses implement the vectorised row-wise operations :meth:`_value_rows`
    (one value per row), :meth:`prox` (all rows at once) and
    :meth:`_subdiff_distance_rows` (one distance per row); this class derives
    :meth:`value`, :meth:`value_row`, :meth:`prox_row` and
    :meth:`subdiff_distance` (max over rows) from them.
    """

    row_separable = True
    row_step = True

    def _value_rows(self, W: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _subdiff_distance_rows(self, W: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def value(self, W: np.ndarray) -> float:
        """Penalty value at ``W`` of shape ``(n_features, n_tasks)``."""
        return float(np.sum(self._value_rows(np.atleast_2d(W))))

    def value_row(self, w_row: np.ndarray) -> float:
        """Penalty value of one feature row ``w_row`` of shape ``(n_tasks,)``."""
        return float(self._value_rows(np.asarray(w_row, dtype=float)[None, :])[0])

    def prox_row(self, w_row: np.ndarray, step: float) -> np.ndarray:
        """Prox of one feature row ``w_row`` of shape ``(n_tasks,)``, as a new array."""
        return self.prox(np.asarray(w_row, dtype=float)[None, :], step)[0]

    def subdiff_distance(self, W: np.ndarray, grad: np.ndarray) -> float:
        """Max over feature rows of the distance from ``-grad[j]`` to ``∂f(W[j])``.

        Parameters
        ----------
        W, grad : ndarray of shape (n_features, n_tasks)
            Current weights and datafit gradient at ``W``.
        """
        W = np.atleast_2d(np.asarray(W, dtype=float))
        grad = np.atleast_2d(np.asarray(grad, dtype=float))
        if W.shape != grad.shape:
            raise ValueError(f"W has shape {W.shape} but grad has shape {grad.shape}")
        if W.size == 0:
            return 0.0
        return float(np.max(self._subdiff_distance_rows(W, grad)))


class SmoothPenalty:
    """A differentiable penalty that solvers fold into the datafit.

    Implements :meth:`value`, :meth:`gradient` and :meth:`lipschitz` (a
    Lipschitz constant of the gradient in Frobenius norm).
    """

    n_components: int = 1
    row_separable: bool = False
    _param_names: tuple[str, ...] = ("alpha",)

    def value(self, W: np.ndarray) -> float:
        """Penalty value at ``W`` of shape ``(n_features, n_tasks)``."""
        raise NotImplementedError

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """Gradient at ``W``, shape ``(n_features, n_tasks)``."""
        raise NotImplementedError

    def lipschitz(self) -> float:
        """Lipschitz constant of :meth:`gradient` (Frobenius norm)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._param_names)
        return f"{type(self).__name__}({params})"


def row_thresholds(step, strength: float):
    """``step * strength`` as a float, or one threshold per row (shape ``(n_rows,)``) for a
    per-row step of shape ``(n_rows, 1)``."""
    if np.ndim(step) == 0:
        return step * strength
    return np.asarray(step, dtype=float).reshape(-1) * strength


def group_shrink(V: np.ndarray, thresholds, axis: int = -1) -> np.ndarray:
    """Group soft-thresholding ``v * max(0, 1 - t / ||v||_2)`` along ``axis``.

    ``thresholds`` is a scalar or broadcasts against the norms (``V`` with ``axis``
    removed). Exactly zero where ``||v||_2 <= t``.
    """
    norms = np.linalg.norm(V, axis=axis, keepdims=True)
    t = np.asarray(thresholds, dtype=float)
    if t.ndim:
        t = np.expand_dims(t, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > t, 1.0 - t / np.where(norms > 0, norms, 1.0), 0.0)
    return V * scale


def soft_threshold(V: np.ndarray, threshold) -> np.ndarray:
    """Entrywise soft-thresholding ``sign(v) * max(|v| - t, 0)``.

    Computed as ``max(v - t, 0) + min(v + t, 0)`` (fastest of the numpy forms);
    exactly zero where ``|v| <= t``.
    """
    return np.maximum(V - threshold, 0.0) + np.minimum(V + threshold, 0.0)
