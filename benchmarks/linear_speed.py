"""Speed of the classical half's solvers against scikit-learn, single-threaded.

Measures the time to reach 1e-6 relative accuracy of the optimum (optimum from a very tight
run), as a ratio to scikit-learn's ``MultiTaskLasso`` tuned (its ``tol``) to reach the same
accuracy, on shared designs S (1000, 500, 10), M (5000, 2000, 20), L (20000, 1000, 100) at
``alpha = 0.1`` and ``0.01 alpha_max``; the same for a 50-alpha warm-started path; plus the
cold start, School (L21, trace norm, clustered MTL) and one FISTA iteration on Chem97.

Timing is the CPU time of this process (``time.process_time``) with every BLAS / OpenMP
pool limited to one thread, so a run measures single-threaded work and stays comparable on
a machine shared with other jobs (wall clock there varied by 2-3x between runs; CPU time by
a few percent). Runs are interleaved (ours, sklearn, ours, ...) and medians of
``--repeats`` (>= 5) are reported. The cold start is a fresh interpreter that imports the
package and fits a small ``GroupLassoRegressor``; it is timed as the child's CPU time (and
wall clock), next to a fresh interpreter that only runs ``import sklearn.base``, the floor
that any scikit-learn estimator pays. Bytecode caching is on in the child, as for an
installed package (one unmeasured run writes it first). Writes JSON (``--out``). Usage::

    python benchmarks/linear_speed.py                 # everything
    python benchmarks/linear_speed.py --sizes S       # one size, no extras
    python benchmarks/linear_speed.py --sizes none --extras
    python benchmarks/linear_speed.py --sizes L --path-sizes L --path-repeats 1
    python benchmarks/linear_speed.py --only chem97 --repeats 9 --out /tmp/chem97.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from threadpoolctl import threadpool_limits

SIZES = {"S": (1000, 500, 10), "M": (5000, 2000, 20), "L": (20000, 1000, 100)}
FRACS = (0.1, 0.01)
ACCURACY = 1e-6
TOLS = [10.0**-k for k in range(2, 13)]  # looser first


def _data(n, p, T, seed=0):
    """Gaussian design, 10% active rows, noise of half the signal's scale."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((p, T))
    active = rng.choice(p, p // 10, replace=False)
    W[active] = rng.standard_normal((active.size, T))
    Y = X @ W
    Y += 0.5 * Y.std() * rng.standard_normal((n, T))
    return X, Y


def _timed(fn):
    """(CPU seconds of this process, result) of ``fn()``."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def _interleaved(fns, repeats):
    """Median seconds of every function, runs interleaved."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn)[0])
    return {name: float(np.median(t)) for name, t in times.items()}


# ------------------------------------------------------------------ shared design
def _ours_fit(X, Y, alpha, tol):
    from multitask.linear._design import make_shared_design
    from multitask.linear.datafits import Quadratic
    from multitask.linear.penalties import L21
    from multitask.linear.solvers import solve

    res = solve(Quadratic(make_shared_design(X, Y)), L21(alpha), tol=tol)
    return res.W, res.intercept


def _sk_fit(X, Y, alpha, tol):
    from sklearn.linear_model import MultiTaskLasso

    m = MultiTaskLasso(alpha=alpha, tol=tol, max_iter=1_000_000).fit(X, Y)
    return m.coef_.T, m.intercept_


def _objective(df, alpha, W, b):
    from multitask.linear.penalties import L21

    return df.value(W, b) + L21(alpha).value(W)


def _tune(fit, ref, objective):
    """Loosest tol whose solution is within ACCURACY of ``ref`` (relative)."""
    for tol in TOLS:
        W, b = fit(tol)
        if (objective(W, b) - ref) / abs(ref) <= ACCURACY:
            return tol
    return TOLS[-1]


def bench_single(name, repeats):
    from multitask.linear._design import make_shared_design
    from multitask.linear.datafits import Quadratic
    from multitask.linear.penalties import L21
    from multitask.linear.solvers import alpha_max, solve

    X, Y = _data(*SIZES[name])
    df = Quadratic(make_shared_design(X, Y))
    top = alpha_max(df, L21)
    rows = []
    for frac in FRACS:
        alpha = frac * top
        ref = solve(df, L21(alpha), tol=1e-12).objective  # gap-certified to 1e-12
        obj = lambda W, b, a=alpha: _objective(df, a, W, b)  # noqa: E731
        tol_ours = _tune(lambda t, a=alpha: _ours_fit(X, Y, a, t), ref, obj)
        tol_sk = _tune(lambda t, a=alpha: _sk_fit(X, Y, a, t), ref, obj)
        med = _interleaved(
            {
                "ours": lambda a=alpha, t=tol_ours: _ours_fit(X, Y, a, t),
                "sklearn": lambda a=alpha, t=tol_sk: _sk_fit(X, Y, a, t),
            },
            repeats,
        )
        rows.append(
            dict(size=name, kind="fit", frac=frac, tol_ours=tol_ours, tol_sklearn=tol_sk, **med)
        )
        _print_row(rows[-1])
    return rows


# ----------------------------------------------------------------------- paths
def _alphas(df, n=50, eps=1e-3):
    from multitask.linear.penalties import L21
    from multitask.linear.solvers import alpha_max

    return alpha_max(df, L21) * np.geomspace(1.0, eps, n)


def _ours_path(X, Y, alphas, tol):
    from multitask.linear._design import make_shared_design
    from multitask.linear.datafits import Quadratic
    from multitask.linear.penalties import L21
    from multitask.linear.solvers import regularization_path

    path = regularization_path(Quadratic(make_shared_design(X, Y)), L21, alphas=alphas, tol=tol)
    return list(zip(path.coefs, path.intercepts, strict=True))


def _sk_path(X, Y, alphas, tol):
    from sklearn.linear_model import lasso_path

    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    _, coefs, _ = lasso_path(X - xm, Y - ym, alphas=alphas, tol=tol, max_iter=1_000_000)
    out = []
    for i in range(len(alphas)):
        W = coefs[:, :, i].T
        out.append((W, ym - xm @ W))
    return out


def bench_path(name, repeats, checks=(9, 29, 49)):
    from multitask.linear._design import make_shared_design
    from multitask.linear.datafits import Quadratic
    from multitask.linear.penalties import L21
    from multitask.linear.solvers import solve

    X, Y = _data(*SIZES[name])
    df = Quadratic(make_shared_design(X, Y))
    alphas = _alphas(df)
    refs = {i: solve(df, L21(alphas[i]), tol=1e-12).objective for i in checks}

    def accurate(path):
        return all(
            (_objective(df, alphas[i], *path[i]) - refs[i]) / abs(refs[i]) <= ACCURACY
            for i in checks
        )

    def tune(run):
        for tol in TOLS:
            if accurate(run(tol)):
                return tol
        return TOLS[-1]

    tol_ours = tune(lambda t: _ours_path(X, Y, alphas, t))
    tol_sk = tune(lambda t: _sk_path(X, Y, alphas, t))
    med = _interleaved(
        {
            "ours": lambda: _ours_path(X, Y, alphas, tol_ours),
            "sklearn": lambda: _sk_path(X, Y, alphas, tol_sk),
        },
        repeats,
    )
    row = dict(size=name, kind="path50", frac=None, tol_ours=tol_ours, tol_sklearn=tol_sk, **med)
    _print_row(row)
    return [row]


# ---------------------------------------------------------------------- extras
COLD = (
    "import numpy as np\n"
    "from multitask.linear import GroupLassoRegressor\n"
    "rng = np.random.default_rng(0)\n"
    "X = rng.standard_normal((200, 20)); Y = rng.standard_normal((200, 3))\n"
    "GroupLassoRegressor(alpha=0.05).fit(X, Y)\n"
)
FLOOR = "import sklearn.base\n"


def _child_seconds(code, env):
    """(CPU seconds, wall seconds) of a fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def bench_cold_start(repeats):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    _child_seconds(COLD, env)  # writes the bytecode cache, as installing would
    runs = {"ours": [], "floor": []}
    for _ in range(repeats):  # interleaved
        runs["ours"].append(_child_seconds(COLD, env))
        runs["floor"].append(_child_seconds(FLOOR, env))
    med = {k: np.median(np.array(v), axis=0) for k, v in runs.items()}
    row = dict(
        kind="cold_start",
        seconds=float(med["ours"][0]),
        wall=float(med["ours"][1]),
        floor_sklearn_base=float(med["floor"][0]),
        floor_wall=float(med["floor"][1]),
        goal=1.5,
    )
    print(
        f"cold start (fresh process, import + small GroupLassoRegressor fit): CPU "
        f"{row['seconds']:.3f} s, wall {row['wall']:.3f} s (goal 1.5); "
        f"'import sklearn.base' alone: CPU {row['floor_sklearn_base']:.3f} s, wall "
        f"{row['floor_wall']:.3f} s; overhead over it "
        f"{row['seconds'] - row['floor_sklearn_base']:.3f} s"
    )
    return [row]


def _school():
    from multitask.datasets import load
    from multitask.linear._design import make_design

    data = load("school")
    X, y, task = data.arrays()
    _, codes = np.unique(task, return_inverse=True)
    X = X[:, X.std(axis=0) > 0]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return make_design(X, y, codes, int(codes.max()) + 1)


def bench_school(repeats):
    from multitask.linear.datafits import Quadratic
    from multitask.linear.penalties import L21, TraceNorm
    from multitask.linear.solvers import alpha_max, clustered_mtl, solve

    design = _school()
    rows = []
    for pen_cls in (L21, TraceNorm):
        df = Quadratic(design)
        alpha = 0.01 * alpha_max(df, pen_cls)
        ref = solve(df, pen_cls(alpha), tol=1e-13, max_iter=200000).objective

        def fit(tol, a=alpha, cls=pen_cls):
            res = solve(Quadratic(design), cls(a), tol=tol, max_iter=200000)
            return res.W, res.intercept

        obj = lambda W, b, a=alpha, cls=pen_cls, d=df: d.value(W, b) + cls(a).value(W)  # noqa: E731
        tol = _tune(fit, ref, obj)
        med = _interleaved({"ours": lambda t=tol, f=fit: f(t)}, repeats)
        rows.append(
            dict(kind=f"school_{pen_cls.__name__}", seconds=med["ours"], tol=tol, goal=0.15)
        )
        print(
            f"School {pen_cls.__name__} at 0.01 alpha_max to 1e-6: {med['ours']:.3f} s (goal 0.15)"
        )
    df = Quadratic(design)
    rho1, rho2, k = 1.0, 1.0, 3
    ref = clustered_mtl(df, rho1, rho2, k, tol=1e-10, max_iter=100000).objective
    tol = 1e-4
    for tol in [10.0**-e for e in range(3, 11)]:
        res = clustered_mtl(df, rho1, rho2, k, tol=tol, max_iter=100000)
        if (res.objective - ref) / abs(ref) <= 1e-4:
            break
    med = _interleaved(
        {"ours": lambda: clustered_mtl(Quadratic(design), rho1, rho2, k, tol=tol, max_iter=100000)},
        repeats,
    )
    rows.append(dict(kind="school_clustered_k3", seconds=med["ours"], tol=tol, goal=5.0))
    print(f"School clustered MTL (k=3) to 1e-4: {med['ours']:.3f} s (goal 5)")
    return rows


def bench_chem97(repeats):
    """One FISTA iteration on Chem97 (2,410 tasks) against one pass of ``X^T r``.

    Each repeat times, back to back, 50 passes of ``X^T r`` and FISTA runs of 1 and
    ``1 + n_it`` iterations (``tol=0``, gap checks every 10 iterations as by default, so
    their share is included); its ratio is its own iteration time over its own pass time, and
    the median of these ratios is reported (load moves both parts of a ratio together; a
    ratio of separate medians mixes moments). ``max(3 * repeats, 15)`` repeats, the order
    of the three timings alternating between repeats.
    """
    from multitask.datasets import load
    from multitask.linear._design import make_design
    from multitask.linear.datafits import Quadratic
    from multitask.linear.penalties import L21
    from multitask.linear.solvers import fista

    X, y, task = load("chem97").arrays()
    _, codes = np.unique(task, return_inverse=True)
    design = make_design(X, y, codes, int(codes.max()) + 1)
    pen = L21(1e-3)
    r = np.random.default_rng(0).standard_normal(len(y))
    n_it, n_xtr, n_rep = 200, 50, max(3 * repeats, 15)
    rows = []
    for use_gram in (False, True):
        df = Quadratic(design, use_gram=use_gram)
        fista(df, pen, tol=0.0, max_iter=2)  # caches, and numba kernels loaded

        def iters(k, df=df):
            return lambda: fista(df, pen, fit_intercept=True, tol=0.0, max_iter=k)

        fns = [
            ("xtr", lambda: [X.T @ r for _ in range(n_xtr)]),
            ("fista1", iters(1)),
            ("fistaN", iters(1 + n_it)),
        ]
        per_iter, xtr, ratios = [], [], []
        for rep in range(n_rep):
            t = {name: _timed(fn)[0] for name, fn in (fns if rep % 2 == 0 else fns[::-1])}
            per_iter.append((t["fistaN"] - t["fista1"]) / n_it)
            xtr.append(t["xtr"] / n_xtr)
            ratios.append(per_iter[-1] / xtr[-1])
        mode = "Gram" if use_gram else "data"
        row = dict(
            kind=f"chem97_fista_iteration_{mode}",
            seconds=float(np.median(per_iter)),
            xtr=float(np.median(xtr)),
            ratio=float(np.median(ratios)),
            ratio_quartiles=[float(q) for q in np.percentile(ratios, [25, 75])],
            repeats=n_rep,
            load=os.getloadavg()[0],
        )
        rows.append(row)
        print(
            f"Chem97 ({design.n_tasks} tasks, {design.n_samples} rows), {mode} mode: one FISTA "
            f"iteration {row['seconds'] * 1e3:.3f} ms = {row['ratio']:.2f}x one X^T r pass "
            f"({row['xtr'] * 1e3:.3f} ms; median of {n_rep} paired ratios, quartiles "
            f"{row['ratio_quartiles'][0]:.2f}-{row['ratio_quartiles'][1]:.2f}; goal 3x; "
            f"load {row['load']:.1f})"
        )
    return rows


# ----------------------------------------------------------------------- report
GOALS = {("fit", "S"): 1.0, ("fit", "M"): 1.0, ("fit", "L"): 0.15}
GOALS.update({("path50", "S"): 1.0, ("path50", "M"): 0.6, ("path50", "L"): 0.05})


def _print_row(row):
    ratio = row["ours"] / row["sklearn"]
    row["ratio"] = ratio
    goal = GOALS[(row["kind"], row["size"])]
    what = row["kind"] if row["frac"] is None else f"{row['kind']} {row['frac']:g} alpha_max"
    print(
        f"{row['size']} {what:<22} ours {row['ours']:8.3f} s  sklearn {row['sklearn']:8.3f} s  "
        f"ratio {ratio:5.2f}x (goal <= {goal}x)  tol ours {row['tol_ours']:.0e} "
        f"sklearn {row['tol_sklearn']:.0e}",
        flush=True,
    )


EXTRAS = {"cold": bench_cold_start, "school": bench_school, "chem97": bench_chem97}


def _run_only(args):
    """``--only chem97`` (etc.): the named extras alone, written to ``--out``."""
    logging.getLogger("multitask").setLevel(logging.ERROR)
    rows = []
    with threadpool_limits(limits=1):
        for name in args.only:
            rows += EXTRAS[name](args.repeats)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    with open(args.out, "w") as fh:
        json.dump({"repeats": args.repeats, "load": load, "rows": rows}, fh, indent=1)
    print(f"wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L"], help="S M L, or none")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--path-sizes", nargs="*", default=None, help="default: --sizes")
    parser.add_argument("--path-repeats", type=int, default=None, help="default: --repeats")
    parser.add_argument("--extras", action="store_true", help="only with --sizes: add extras")
    parser.add_argument("--out", default="benchmarks/linear_speed.json")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(EXTRAS), help="only these extras (no S/M/L sizes)"
    )
    args = parser.parse_args(argv)
    if args.only:
        return _run_only(args)
    logging.getLogger("multitask").setLevel(logging.ERROR)  # timed runs stop early on purpose
    sizes = [s for s in args.sizes if s != "none"]
    run_extras = args.extras or (args.sizes == ["S", "M", "L"] and args.path_sizes is None)
    rows = []
    with threadpool_limits(limits=1):
        if run_extras:
            rows += bench_cold_start(args.repeats)
        path_sizes = sizes if args.path_sizes is None else args.path_sizes
        for name in sizes:
            rows += bench_single(name, args.repeats)
        for name in path_sizes:
            rows += bench_path(name, args.path_repeats or args.repeats)
        if run_extras:
            rows += bench_school(args.repeats)
            rows += bench_chem97(args.repeats)
    with open(args.out, "w") as fh:
        meta = {"repeats": args.repeats, "path_repeats": args.path_repeats or args.repeats}
        json.dump({**meta, "accuracy": ACCURACY, "rows": rows}, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
