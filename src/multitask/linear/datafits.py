"""Datafits of the classical half: the average loss of every task, summed over tasks.

Objective conventions (``W`` of shape ``(n_features, n_tasks)``, ``b`` of shape ``(n_tasks,)``,
``d_i`` the row weights of :class:`~multitask.linear._design.MultiTaskDesign`, which sum to one
over the rows of each task: ``d_i = 1 / n_t``, or ``s_i / sum_{k in t} s_k`` with sample
weights):

- :class:`Quadratic`: ``sum_t sum_{i in t} d_i / 2 (y_i - x_i . w_t - b_t)^2``; unweighted, this
  is ``sum_t 1/(2 n_t) ||y_t - X_t w_t - b_t 1||^2``, and on a shared design
  ``1/(2n) ||Y - XW - 1 b^T||_F^2`` (scikit-learn's ``MultiTaskLasso`` datafit);
- :class:`Logistic`: ``sum_t sum_{i in t} d_i log(1 + exp(-y_i (x_i . w_t + b_t)))`` with
  labels ``y_i`` in ``{-1, +1}``.

Both expose a *linear state* so that solvers can reuse products: ``S = datafit.linear(W)`` is
linear in ``W`` (predictions, or Gram products ``G_t w_t``), and ``value_at`` /
``gradient_at`` take it, so an extrapolated point's state is a combination of known states.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ._data_products import data_forward
from ._gram_products import gram_forward, gram_product

__all__ = [
    "Logistic",
    "Quadratic",
    "dual_norm",
    "gap_certifies",
    "gap_from_parts",
    "newton_intercept",
]

#: penalties of the form ``alpha * norm(W)`` whose ``alpha_max(G)`` is the dual norm of ``G``
_NORM_PENALTIES = frozenset({"L1", "L21", "L1Inf", "TraceNorm"})


def dual_norm(penalty, G):
    """Dual norm of ``G`` for a norm penalty ``alpha * Omega``, or None if unknown.

    Uses ``penalty.dual_norm(G)`` when the penalty has one, else ``alpha_max(G)`` for the
    norm penalties (L1, L21, L1Inf, TraceNorm), whose ``alpha_max`` is exactly the dual
    norm of the gradient at zero.
    """
    if hasattr(penalty, "dual_norm"):
        value = penalty.dual_norm(G)
        return None if value is None else float(value)
    if type(penalty).__name__ in _NORM_PENALTIES and getattr(penalty, "n_components", 1) == 1:
        return float(penalty.alpha_max(G))
    return None


#: rounding error of a computed dual norm of the gradient, in units of ``eps`` times its
#: value at zero (a generous bound: sums over many rows of mixed signs)
_DUAL_NORM_ROUNDING = 1e4


def gap_certifies(penalty, grad0, tol):
    """True when the duality gap of the rescaled residual can certify the relative ``tol``.

    The dual point of :func:`gap_from_parts` is the residual times ``s = alpha / dn`` (``dn``
    the dual norm of the gradient, ``alpha`` once optimal). At ``alpha = 0`` it is zero and
    the relative gap is 1 at every point, the optimum included. For a tiny ``alpha`` the
    rounding error of ``dn``, about ``eps * dn(grad0)``, leaves ``1 - s`` of about
    ``eps * dn(grad0) / alpha`` at the optimum, and the relative gap of least squares is
    about ``(1 - s)^2``: it cannot fall below ``tol`` once ``alpha`` is under
    ``eps * dn(grad0) / sqrt(tol)`` (with the margin :data:`_DUAL_NORM_ROUNDING`). Solvers
    then stop on the prox-gradient mapping or the subdifferential distance instead.

    Parameters
    ----------
    penalty : Penalty
    grad0 : ndarray of shape (n_features, n_tasks)
        Datafit gradient at ``W = 0`` (no intercept, or centred).
    tol : float
        Relative tolerance the solver must certify.

    Returns
    -------
    bool
        False also where the penalty's dual norm is unknown (no gap at all).
    """
    dn = dual_norm(penalty, grad0)
    if dn is None or not penalty.alpha > 0:
        return False
    eps = np.finfo(float).eps
    floor = _DUAL_NORM_ROUNDING * eps * dn / np.sqrt(max(float(tol), eps))
    return bool(penalty.alpha >= floor)


def gap_from_parts(W, F, ry, grad, penalty):
    """Duality gap of ``F + penalty`` from the residual's parts, or None.

    Parameters
    ----------
    W : ndarray of shape (n_features, n_tasks)
    F : float
        Datafit value ``sum_i d_i r_i^2 / 2``.
    ry : float
        ``sum_i d_i r_i y_i``.
    grad : ndarray of shape (n_features, n_tasks)
        Datafit gradient ``-X^T D r``.
    penalty : norm penalty

    Returns
    -------
    (gap, primal, dual) or None when the penalty's dual norm is unknown.
    """
    dn = dual_norm(penalty, grad)
    if dn is None:
        return None
    scale = 1.0 if dn <= penalty.alpha else penalty.alpha / dn
    primal = F + penalty.value(W)
    dual = scale * ry - scale**2 * F
    return primal - dual, primal, dual


#: smallest Lipschitz constant returned (a zero design has none): any positive value
#: bounds a gradient that is constant in ``W``, and ``1 / _MIN_LIPSCHITZ`` stays finite
_MIN_LIPSCHITZ = 1e-150


class _Datafit:
    """Shared machinery: public wrappers around the linear-state methods."""

    #: True when ``intercept`` is profiled out (centred data); ``b`` is then ignored
    profiled = False

    def __init__(self, design):
        self.design = design

    @property
    def n_features(self):
        return self.design.n_features

    @property
    def n_tasks(self):
        return self.design.n_tasks

    def _b(self, b):
        return np.zeros(self.n_tasks) if b is None else np.asarray(b, dtype=float)

    def value(self, W, b=None):
        """Datafit value at ``(W, b)``; ``b=None`` means no intercept."""
        return self.value_at(W, self._b(b), self.linear(W))

    def gradient(self, W, b=None):
        """Gradient ``(grad_W (n_features, n_tasks), grad_b (n_tasks,))`` at ``(W, b)``."""
        return self.gradient_at(W, self._b(b), self.linear(W))

    def lipschitz(self, fit_intercept=False):
        """Global Lipschitz constant of the gradient in ``W`` (in ``(W, b)`` if asked).

        The intercept column has squared weighted norm one per task, so
        ``||[A, 1]||^2 <= ||A||^2 + 1`` bounds the joint constant.
        """
        # floored: features constant within every task centre to zero, and rounding may
        # leave a zero or slightly negative top eigenvalue; a step 1 / L must stay finite
        L = max(self._curvature * self.design_lipschitz(), _MIN_LIPSCHITZ)
        return L + self._curvature if fit_intercept else L

    def lipschitz_per_task(self):
        """Lipschitz constant of every task's gradient in ``w_t``, shape (n_tasks,)."""
        return self._curvature * _per_task_top_eigenvalues(self.design, self.profiled)

    def design_lipschitz(self):
        """``max_t lambda_max(X_t^T D_t X_t)`` (of the centred data when :attr:`profiled`)."""
        return _global_top_eigenvalue(self.design, self.profiled)

    def __repr__(self):
        return f"{type(self).__name__}({self.design!r})"


class Quadratic(_Datafit):
    """Squared loss averaged within each task: ``sum_t 1/(2 n_t) ||y_t - X_t w_t - b_t||^2``.

    Parameters
    ----------
    design : MultiTaskDesign
    use_gram : bool or None, default=None
        Compute with the Gram matrices ``X_t^T D_t X_t``; None decides from the design's
        shape (:attr:`MultiTaskDesign.gram_is_cheap`).

    Notes
    -----
    :meth:`centered` returns the same datafit with the intercept profiled out, i.e. evaluated
    at the optimal ``b(W) = ybar_t - mu_t^T w_t``; solvers use it so that the intercept costs
    nothing and the duality gap holds.

    References
    ----------
    Ndiaye, E., Fercoq, O., Gramfort, A. and Salmon, J. "Gap safe screening rules for
    sparsity enforcing penalties." JMLR 18(128), 2017, Section 2 (dual of the squared loss
    and the rescaled-residual dual point, eq. (7)).
    """

    _curvature = 1.0
    #: the gradient is affine in ``W``: solvers may combine gradients (and forward points
    #: ``W - grad / L``) of known points linearly instead of evaluating new ones
    affine_gradient = True

    def __init__(self, design, use_gram=None):
        super().__init__(design)
        self.use_gram = design.gram_is_cheap if use_gram is None else bool(use_gram)

    def centered(self):
        """This datafit with the intercept profiled out (``b`` then ignored)."""
        out = Quadratic(self.design, use_gram=self.use_gram)
        out.profiled = True
        return out

    # linear state: Gram products (n_features, n_tasks) or predictions
    def linear(self, W):
        d = self.design
        if self.use_gram:
            return gram_product(d, W, self.profiled)
        S = d.predict(W)
        if self.profiled:
            S = S - d.expand_tasks(np.sum(d.x_mean * W, axis=0))
        return S

    def _targets(self):
        if not self.profiled:
            return self.design.y
        if "_targets_cache" not in self.__dict__:
            d = self.design
            self._targets_cache = d.y - d.expand_tasks(d.y_mean)
        return self._targets_cache

    def _xty(self):
        if "_xty_cache" not in self.__dict__:
            d = self.design
            self._xty_cache = d.xty - d.x_mean * d.y_mean if self.profiled else d.xty
        return self._xty_cache

    def gradient_at_zero(self):
        """Gradient in ``W`` at ``W = 0`` (no intercept, or centred), ``-X^T D y``.

        Computed from the cached ``X^T D y``: no pass over the data after the first.

        Returns
        -------
        ndarray of shape (n_features, n_tasks)
        """
        return -self._xty()

    def gram_parts(self, W, S):
        """``(F, ry, grad)``: the datafit value ``sum_i d_i r_i^2 / 2``, ``sum_i d_i r_i y_i``
        and the gradient ``-X^T D r`` at ``W`` (no intercept, or centred), from the cached
        ``X^T D y`` and ``y^T D y`` and the Gram product ``S = H W``: no residual is formed.
        The parts of the duality gap (:func:`gap_from_parts`)."""
        xty, yty = self._xty(), self._yty_total()
        wc = float(np.vdot(W, xty))  # whole-array dots: no per-task temporaries
        F = 0.5 * (float(np.vdot(W, S)) - 2 * wc + yty)
        return F, yty - wc, S - xty

    def _yty(self):
        if "_yty_cache" not in self.__dict__:
            d = self.design
            self._yty_cache = d.yty - d.y_mean**2 if self.profiled else d.yty
        return self._yty_cache

    def _yty_total(self):
        if "_yty_total_cache" not in self.__dict__:
            self._yty_total_cache = float(np.sum(self._yty()))
        return self._yty_total_cache

    def value_at(self, W, b, S):
        d = self.design
        if self.use_gram:
            per_task = np.sum(W * S, axis=0) - 2 * np.sum(W * self._xty(), axis=0) + self._yty()
            if not self.profiled:
                mw = np.sum(d.x_mean * W, axis=0)
                per_task = per_task + 2 * b * mw + b**2 - 2 * b * d.y_mean
            return 0.5 * float(np.sum(per_task))
        r = self._targets() - S
        if not self.profiled:
            r = r - d.expand_tasks(b)
        return 0.5 * float(np.sum(d._broadcast(d.weights) * r**2))

    def gradient_at(self, W, b, S):
        d = self.design
        if self.use_gram:
            gW = S - self._xty()
            if self.profiled:
                return gW, np.zeros(self.n_tasks)
            gW = gW + d.x_mean * b
            return gW, np.sum(d.x_mean * W, axis=0) + b - d.y_mean
        R = S - self._targets()
        if not self.profiled:
            R = R + d.expand_tasks(b)
        R = d._broadcast(d.weights) * R
        gW = d.rmatvec(R)
        gb = d.task_sum(R)
        if self.profiled:
            return gW - d.x_mean * gb, np.zeros(self.n_tasks)
        return gW, gb

    def forward_operator(self, b, L):
        """The forward (gradient) step at a fixed intercept ``b`` and step ``1 / L``.

        Parameters
        ----------
        b : ndarray of shape (n_tasks,)
            Ignored when :attr:`profiled`.
        L : float

        Returns
        -------
        callable
            ``step(W, out)`` writes ``W - grad_W(W, b) / L`` into ``out`` (both of shape
            (n_features, n_tasks)) and returns ``(S, grad_W)``, the linear state and the
            gradient at ``W``; ``(None, None)`` where the step is folded into one product
            with the Gram matrices, ``(I - G_t / L) w_t + c_t / L`` (``c = -grad_W(0, b)``).
            Dense per-task designs use cached centred operators (:mod:`._data_products`).
        """
        d = self.design
        if self.use_gram:
            zero = np.zeros((self.n_features, self.n_tasks))
            c = -self.gradient_at(zero, b, zero)[0]
            step = gram_forward(d, self.profiled, c, L)
            if step is not None:
                return step
        elif not d.shared and not sp.issparse(d.X):
            target = self._targets() if self.profiled else d.y - d.expand_tasks(b)
            return data_forward(d, self.profiled, target, L)
        return literal_forward(self, b, L)

    def intercept_optimal(self, W):
        """Optimal intercept ``b_t = ybar_t - mu_t^T w_t`` for fixed ``W``, shape (n_tasks,)."""
        d = self.design
        return d.y_mean - np.sum(d.x_mean * W, axis=0)

    def intercept_step(self, W, b):
        """Exact minimisation in ``b`` (the loss is quadratic in ``b`` with curvature 1)."""
        return self.intercept_optimal(W)

    def duality_gap(self, W, penalty, b=None):
        """Duality gap ``(gap, primal, dual)`` for a norm penalty, or None if undefined.

        The dual point is the residual rescaled into the dual-norm ball,
        ``theta = r * min(1, alpha / Omega^*(X^T D r))``, and the dual objective is
        ``sum_i d_i (theta_i y_i - theta_i^2 / 2)``. With an intercept, call it on
        :meth:`centered` (the residual is then centred and satisfies the intercept's dual
        constraint).
        """
        if not self.profiled and b is not None and np.any(np.asarray(b) != 0):
            return self.centered().duality_gap(W, penalty)
        return self.gap_at(W, self.linear(W), penalty)

    def gap_at(self, W, S, penalty, return_grad=False, grad=None):
        """:meth:`duality_gap` from the linear state ``S`` (no intercept or centred).

        With ``return_grad=True`` returns ``(gap_or_None, grad_W)``. ``grad``, the gradient
        at ``W`` when the caller has it, saves the product with the data.
        """
        d = self.design
        at_zero = not self.use_gram and not np.any(W)
        if self.use_gram or at_zero:  # at W = 0 only the cached X^T D y is needed
            S = np.zeros_like(W) if at_zero else S
            F, ry, grad = self.gram_parts(W, S)
        else:
            y = self._targets()
            r = y - S
            w0 = d.equal_weight
            if w0 is None:
                dr = d._broadcast(d.weights) * r
                F, ry = 0.5 * float(np.vdot(dr, r)), float(np.vdot(dr, y))
            else:  # no weighted copies of the (n_samples, n_tasks) residual
                F, ry = 0.5 * w0 * float(np.vdot(r, r)), w0 * float(np.vdot(r, y))
                dr = r
                dr *= w0
            if grad is None:
                grad = -d.rmatvec(dr)
                if self.profiled:
                    grad = grad + d.x_mean * d.task_sum(dr)
        gap = gap_from_parts(W, F, ry, grad, penalty)
        return (gap, grad) if return_grad else gap


class Logistic(_Datafit):
    """Logistic loss averaged within each task, labels in ``{-1, +1}``.

    ``sum_t 1/n_t sum_{i in t} log(1 + exp(-y_i (x_i . w_t + b_t)))``; its gradient is
    Lipschitz with constant ``lambda_max(X_t^T D_t X_t) / 4``.

    Parameters
    ----------
    design : MultiTaskDesign
        ``design.y`` must hold labels in ``{-1, +1}``.

    References
    ----------
    Hastie, T., Tibshirani, R. and Friedman, J. The Elements of Statistical Learning, 2nd ed.,
    Springer 2009, Section 4.4.1 (logistic log-likelihood, its gradient and Hessian).
    """

    _curvature = 0.25
    use_gram = False
    affine_gradient = False

    def __init__(self, design):
        labels = np.unique(design.y)
        if not np.all(np.isin(labels, (-1.0, 1.0))):
            raise ValueError(
                f"Logistic needs labels in {{-1, +1}}, got values {labels[:5].tolist()}; "
                "encode the classes first (e.g. y = 2 * (y == positive) - 1)."
            )
        super().__init__(design)

    def linear(self, W):
        return self.design.predict(W)

    def value_at(self, W, b, S):
        d = self.design
        margin = d.y * (S + d.expand_tasks(b))
        return float(np.sum(d._broadcast(d.weights) * np.logaddexp(0.0, -margin)))

    def _dloss(self, b, S):
        d = self.design
        return -d._broadcast(d.weights) * d.y * expit(-d.y * (S + d.expand_tasks(b)))

    def gradient_at(self, W, b, S):
        R = self._dloss(b, S)
        return self.design.rmatvec(R), self.design.task_sum(R)

    def intercept_optimal(self, W, b=None, n_iter=50, tol=1e-12):
        """Optimal intercept for fixed ``W`` by safeguarded per-task Newton steps
        (:func:`newton_intercept`), shape (n_tasks,)."""
        d = self.design
        S = self.linear(W)
        weights = d._broadcast(d.weights)

        def derivatives(b):
            p = expit(d.y * (S + d.expand_tasks(b)))
            return d.task_sum(-weights * d.y * (1 - p)), d.task_sum(weights * p * (1 - p))

        return newton_intercept(derivatives, self._b(b).copy(), n_iter, tol)

    def intercept_step(self, W, b):
        """One Newton step in ``b`` per task."""
        return self.intercept_optimal(W, b, n_iter=1)

    def duality_gap(self, W, penalty, b=None):
        """Not implemented for the logistic loss: returns None (solvers then stop on the
        prox-gradient mapping)."""
        return None

    def gap_at(self, W, S, penalty, return_grad=False):
        if return_grad:
            return None, self.gradient_at(W, np.zeros(self.n_tasks), S)[0]
        return None


def newton_intercept(derivatives, b, n_iter, tol):
    """Per-task root of an increasing derivative by safeguarded Newton steps.

    The logistic loss of a task is convex in its intercept ``b_t``, with derivative ``g_t``
    increasing from ``-sum_{y=+1} d_i`` to ``sum_{y=-1} d_i``: a root exists when the task
    has both classes. A plain Newton step ``g / h`` is unbounded where the margins saturate
    (``h ~ 0``) and runs off; here each step is clipped to ``1 + |b_t|`` (the loss varies
    on the unit scale of ``b``; far from the root the radius grows geometrically) and, once
    the derivative's signs bracket the root, a step leaving the bracket is replaced by
    bisection (Press et al., Numerical Recipes, 3rd ed. 2007, Sec. 9.4, ``rtsafe``).

    Parameters
    ----------
    derivatives : callable
        ``b -> (g, h)``, first and second derivatives in each ``b_t``, shapes (n_tasks,).
    b : ndarray of shape (n_tasks,)
        Start, updated in place.
    n_iter : int
        Newton steps at most.
    tol : float
        Stop when ``max_t |g_t| < tol``.

    Returns
    -------
    ndarray of shape (n_tasks,)
    """
    lo, hi = np.full_like(b, -np.inf), np.full_like(b, np.inf)
    for _ in range(n_iter):
        g, h = derivatives(b)
        if np.max(np.abs(g), initial=0.0) < tol:
            break
        lo, hi = np.where(g < 0, b, lo), np.where(g > 0, b, hi)
        radius = 1.0 + np.abs(b)
        step = np.clip(g / (h + 1e-300), -radius, radius)
        if np.all(np.abs(step) <= 4 * np.finfo(float).eps * radius):
            break  # converged to rounding
        new = b - step
        bisect = ~((new >= lo) & (new <= hi)) & np.isfinite(lo) & np.isfinite(hi)
        b = np.where(bisect, 0.5 * (np.where(bisect, lo, 0) + np.where(bisect, hi, 0)), new)
    return b


# ------------------------------------------------------------- top eigenvalues
def _centered_gram(design):
    return design.gram_centered


def _per_task_top_eigenvalues(design, centered):
    """``lambda_max`` of every task's weighted Gram matrix, shape (n_tasks,)."""
    cache = design.__dict__.setdefault("_eig_cache", {})
    key = ("per_task", centered)
    if key not in cache:
        if design.shared:
            cache[key] = np.full(design.n_tasks, _global_top_eigenvalue(design, centered))
        else:
            G = _centered_gram(design) if centered else design.gram
            cache[key] = np.linalg.eigvalsh(G)[:, -1]
    return cache[key]


def _global_top_eigenvalue(design, centered):
    """``max_t lambda_max(X_t^T D_t X_t)``: exact for small Gram, else Lanczos."""
    cache = design.__dict__.setdefault("_eig_cache", {})
    key = ("global", centered)
    if key in cache:
        return cache[key]
    p = design.n_features
    if design.gram_is_cheap and (not design.shared or p <= 400):
        G = _centered_gram(design) if centered else design.gram
        top = float(np.max(np.linalg.eigvalsh(G)[..., -1]))
    else:
        top = _lanczos_top(design, centered)
    cache[key] = top
    return top


def _lanczos_top(design, centered):
    from scipy.sparse.linalg import LinearOperator, eigsh  # lazy: heavy import

    p, T = design.n_features, design.n_tasks
    n_cols = p if design.shared else p * T
    shape = (p, 1) if design.shared else (p, T)
    wts = design._broadcast(design.weights)

    def matvec(v):
        W = v.reshape(shape, order="F")
        if design.shared and design.gram_is_cheap:
            out = design.gram_matvec(W, centered=centered)
            return out.ravel(order="F")
        S = design.predict(np.broadcast_to(W, (p, T)) if design.shared else W)
        if design.shared:
            S = S[:, :1]
        if centered:
            mw = np.sum(design.x_mean[:, : shape[1]] * W, axis=0)
            S = S - (mw[None, :] if design.shared else mw[design.task_idx])
        R = (wts if design.shared else design.weights) * S
        out = np.asarray(design.X.T @ R) if design.shared else design.rmatvec(R)
        if centered:
            tsum = R.sum(axis=0) if design.shared else design.task_sum(R)
            out = out - design.x_mean[:, : shape[1]] * tsum
        return out.ravel(order="F")

    op = LinearOperator((n_cols, n_cols), matvec=matvec, dtype=float)
    v0 = np.ones(n_cols)
    if n_cols <= 2:
        dense = np.column_stack([matvec(e) for e in np.eye(n_cols)])
        return float(np.linalg.eigvalsh(dense)[-1])
    val = eigsh(op, k=1, which="LA", v0=v0, tol=1e-8, return_eigenvectors=False)
    return float(val[0]) * (1 + 1e-8)


def literal_forward(datafit, b, L):
    """``step(W, out)`` writing ``W - grad_W(W, b) / L`` into ``out`` from the datafit's own
    product and gradient (``L`` a float, or an array broadcasting against ``W``: a row or
    entry metric); returns ``(S, grad_W)``, as :meth:`Quadratic.forward_operator`."""

    def step(W, out):
        S = datafit.linear(W)
        g = datafit.gradient_at(W, b, S)[0]
        np.subtract(W, g / L, out=out)
        return S, g

    return step
