"""Textbook FISTA with gradient restart, the oracle of the FISTA iterate tests.

Beck & Teboulle (SIAM J. Imaging Sci. 2009), fixed step ``1 / L``, with O'Donoghue & Candès's
gradient restart (Found. Comput. Math. 2015, Sec. 3.2: reset the momentum when
``<y - x_new, x_new - x> > 0``), written from the textbook with no library code.
"""

import numpy as np


def textbook_fista(grad, prox, L, x0, n_iter):
    """Iterates of FISTA with restart from ``x0``.

    ``grad(W)`` is the smooth part's gradient, ``prox(V)`` the penalty's prox at step ``1 / L``.
    Returns the iterates, the gradient-mapping norms ``L ||x_new - y||`` and the restart count.
    """
    x = y = x0
    t, restarts, xs, maps = 1.0, 0, [], []
    for _ in range(n_iter):
        x_new = prox(y - grad(y) / L)
        maps.append(L * np.linalg.norm(x_new - y))
        if np.vdot(y - x_new, x_new - x) > 0:
            t, restarts = 1.0, restarts + 1
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = x_new + (t - 1.0) / t_new * (x_new - x)
        x, t = x_new, t_new
        xs.append(x)
    return xs, maps, restarts
