"""Task samplers: which task(s) train at each step when every task has its own dataset.

A sampler answers one question per step: which tasks get a batch now. Every
sampler is seeded and stateless between steps except for a step counter, so
``state_dict()`` (the counter) is all a checkpoint needs for an exact resume:
the draw at step ``s`` depends only on ``(seed, s)``.

References
----------
Arivazhagan, Bapna, Firat, Lepikhin, Johnson, Krikun, Chen, Cao, Foster, Cherry,
Macherey, Chen, Wu. "Massively Multilingual Neural Machine Translation in the
Wild: Findings and Challenges." arXiv:1907.05019, 2019, section 4 (temperature-
based data sampling, ``p_t ~ n_t^(1/T)``).
Collobert, Weston. "A Unified Architecture for Natural Language Processing:
Deep Neural Networks with Multitask Learning." ICML 2008 (training by picking
one task and one of its examples at each step).
Ruder. "An Overview of Multi-Task Learning in Deep Neural Networks."
arXiv:1706.05098, 2017 (tasks trained with their own data and schedules).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence

import numpy as np

from multitask._params import check_int, check_names, check_real

__all__ = [
    "PeriodicSampler",
    "ProportionalSampler",
    "RoundRobinSampler",
    "TaskSampler",
    "TemperatureSampler",
    "make_sampler",
]


def _check_mapping(value, name: str, owner: str, what: str, example: str) -> Mapping:
    """``value`` if it is a non-empty mapping task -> count; a TypeError or ValueError that
    names ``owner`` and ``name`` otherwise (a list of counts would be read as task names, a
    list of names fails on ``sizes['a']`` with Python's 'list indices must be integers')."""
    if not isinstance(value, Mapping):
        got = f"{type(value).__name__} {reprlib.repr(value)}"
        if type(value).__module__.startswith("pandas"):  # its repr spans lines
            got = f"a pandas {type(value).__name__} (a Series of counts: pass series.to_dict())"
        raise TypeError(
            f"{owner}: {name} must be a mapping task -> {what}, e.g. {example}, got {got}"
        )
    if not value:
        raise ValueError(
            f"{owner}: {name} is empty; it maps each task to its {what}, e.g. {example}"
        )
    return value


_SIZES = ("number of samples", '{"a": 300, "b": 100}')


class TaskSampler:
    """Base class: ``next()`` returns the tuple of tasks trained at this step.

    Parameters
    ----------
    tasks : sequence of str
        Task names, in a fixed order.
    seed : int
        Seed of the draws, an integer >= 0; the draw at step ``s`` is a function of
        ``(seed, s)``.

    Raises
    ------
    TypeError, ValueError
        ``tasks`` not a non-empty sequence of distinct non-empty strings, or a ``seed`` that
        is not an integer >= 0 (at construction, not at the first draw).

    Examples
    --------
    A sampler of your own overrides :meth:`draw`: here the first task trains at
    every step, with one of the others in turn. Its position is its step counter:

    >>> from multitask.training import TaskSampler
    >>> class MainPlusOne(TaskSampler):
    ...     def draw(self, step):
    ...         main, *others = self.tasks
    ...         return (main, others[step % len(others)])
    >>> sampler = MainPlusOne(["main", "a", "b"])
    >>> [sampler.next() for _ in range(3)]
    [('main', 'a'), ('main', 'b'), ('main', 'a')]
    >>> state = sampler.state_dict()  # what a checkpoint keeps
    >>> state
    {'step': 3}
    >>> resumed = MainPlusOne(["main", "a", "b"])
    >>> resumed.load_state_dict(state)
    >>> resumed.next() == sampler.next() == ("main", "b")
    True
    """

    def __init__(self, tasks: Sequence[str], seed: int = 0):
        owner = type(self).__name__
        if isinstance(tasks, str | bytes):  # "abc" would read as the tasks 'a', 'b', 'c'
            raise TypeError(f"{owner}: tasks must be a sequence of task names, got {tasks!r}")
        tasks = list(tasks)
        if len(tasks) == 0:
            raise ValueError(f"{owner}: a task sampler needs at least one task; got an empty list")
        self.tasks = tuple(check_names(tasks, "tasks", owner))
        self.seed = check_int(seed, "seed", owner, low=0)  # np.random needs one >= 0
        self.step = 0

    def draw(self, step: int) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def draws_every_task(self) -> bool | None:
        """Whether every step draws all of :attr:`tasks` (None: not known in advance; the
        :class:`~multitask.training.Trainer` then checks each step's draw)."""
        return None

    def next(self) -> tuple[str, ...]:
        """Tasks of the current step; advances the counter.

        Raises
        ------
        ValueError
            A draw that is empty, names a task not in :attr:`tasks`, or names one twice
            (:meth:`checked_draw`), before the step trains anything.
        """
        out = self.checked_draw(self.step)
        self.step += 1
        return out

    def checked_draw(self, step: int) -> tuple[str, ...]:
        """:meth:`draw` at ``step``, as a tuple, checked: a non-empty tuple of distinct names
        of :attr:`tasks` (a ValueError naming the sampler and the step otherwise)."""
        out = self.draw(step)
        drawn = tuple(out) if isinstance(out, (tuple, list)) else None
        if drawn and len(set(drawn)) == len(drawn) and all(t in self.tasks for t in drawn):
            return drawn
        raise ValueError(
            f"{self!r}.draw({step}) gave {out!r}; a draw must be a non-empty tuple of distinct "
            f"task names among {list(self.tasks)} (the tasks trained at that step)"
        )

    def state_dict(self) -> dict[str, int]:
        """Position of the sampler (the step counter)."""
        return {"step": self.step}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore the position saved by :meth:`state_dict`."""
        self.step = int(state["step"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={list(self.tasks)}, seed={self.seed})"


class RoundRobinSampler(TaskSampler):
    """One task per step, cycling through the tasks in order.

    Collobert & Weston (ICML 2008) train one task at a time, picking a task at each step;
    the cycle is its deterministic form.

    Parameters
    ----------
    tasks : sequence of str
    seed : int
        Unused: the order is fixed.

    Examples
    --------
    >>> from multitask.training import RoundRobinSampler
    >>> sampler = RoundRobinSampler(["y", "c", "d"])
    >>> [sampler.next() for _ in range(4)]
    [('y',), ('c',), ('d',), ('y',)]
    """

    def draw(self, step: int) -> tuple[str, ...]:
        return (self.tasks[step % len(self.tasks)],)

    @property
    def draws_every_task(self) -> bool:
        return len(self.tasks) == 1


class _ProbabilitySampler(TaskSampler):
    """One task per step, drawn i.i.d. with fixed probabilities."""

    def __init__(self, sizes: Mapping[str, int], seed: int = 0):
        owner = type(self).__name__
        super().__init__(list(_check_mapping(sizes, "sizes", owner, *_SIZES)), seed)
        counts = [check_int(sizes[t], f"sizes[{t!r}]", owner) for t in self.tasks]
        empty = [t for t, k in zip(self.tasks, counts, strict=True) if k <= 0]
        if empty:
            raise ValueError(
                f"{owner}: tasks {empty} have no samples (sizes must be integers >= 1); "
                "drop them before sampling"
            )
        self.probabilities = self._probabilities(np.asarray(counts, dtype=float))

    def _probabilities(self, n: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def draw(self, step: int) -> tuple[str, ...]:
        # Generator.choice(n, p=p) for one sample, without its checks of p (half its cost,
        # ~30 us a draw): the same normalised CDF, one uniform, the same search
        cdf = self.probabilities.cumsum()
        cdf /= cdf[-1]
        u = np.random.default_rng([self.seed, step]).random()
        return (self.tasks[int(cdf.searchsorted(u, side="right"))],)

    @property
    def draws_every_task(self) -> bool:
        return len(self.tasks) == 1


class ProportionalSampler(_ProbabilitySampler):
    """One task per step with probability proportional to its dataset size.

    Collobert & Weston (ICML 2008)'s one task per step, drawn by size: each example is
    then visited about equally often, as in training on the pooled datasets.

    Parameters
    ----------
    sizes : mapping str -> int
        Number of samples (or batches) of each task's dataset: integers >= 1, in a
        non-empty mapping such as a dict (a list or a pandas Series is a TypeError).
    seed : int

    Examples
    --------
    Task ``a`` has three times the data of ``b``, so it is drawn with
    probability 3/4:

    >>> from multitask.training import ProportionalSampler
    >>> sampler = ProportionalSampler({"a": 300, "b": 100}, seed=0)
    >>> sampler.probabilities.tolist()
    [0.75, 0.25]
    >>> [sampler.next()[0] for _ in range(8)]
    ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'a']
    >>> sampler.draw(5)  # a function of (seed, step): the same draw again
    ('a',)
    """

    def _probabilities(self, n: np.ndarray) -> np.ndarray:
        return n / n.sum()


class TemperatureSampler(_ProbabilitySampler):
    """One task per step with probability ``p_t ~ n_t^(1/T)``.

    ``T = 1`` is proportional sampling, ``T -> inf`` uniform (Arivazhagan et
    al. 2019, section 4).

    Parameters
    ----------
    sizes : mapping str -> int
        Number of samples (or batches) of each task's dataset: integers >= 1, in a
        non-empty mapping such as a dict (a list or a pandas Series is a TypeError).
    temperature : float
        ``T > 0``, finite; or ``inf`` (uniform sampling). The probabilities are
        computed in log space (a softmax of ``log(n_t) / T``), so a tiny ``T`` gives
        the largest task(s) probability 1 rather than NaN.
    seed : int

    Examples
    --------
    With sizes 900 and 100, ``T = 1`` draws the small task one step in ten;
    ``T = 5`` flattens that to ``0.1^(1/5) / (0.9^(1/5) + 0.1^(1/5)) = 0.392``:

    >>> from multitask.training import TemperatureSampler
    >>> sizes = {"big": 900, "small": 100}
    >>> TemperatureSampler(sizes, temperature=1).probabilities.round(3).tolist()
    [0.9, 0.1]
    >>> sampler = TemperatureSampler(sizes, temperature=5, seed=0)
    >>> sampler.probabilities.round(3).tolist()
    [0.608, 0.392]
    >>> [sampler.next()[0] for _ in range(6)]
    ['small', 'small', 'big', 'small', 'small', 'big']
    """

    def __init__(self, sizes: Mapping[str, int], temperature: float = 5.0, seed: int = 0):
        self.temperature = check_real(
            temperature, "temperature", type(self).__name__, low=0.0, low_open=True, finite=False
        )
        super().__init__(sizes, seed)

    def _probabilities(self, n: np.ndarray) -> np.ndarray:
        # softmax of log(n_t) / T: (n_t / sum n)^(1/T) underflowed to 0 / 0 for a small T
        logits = np.log(n) / self.temperature
        p = np.exp(logits - logits.max())
        return p / p.sum()


class PeriodicSampler(TaskSampler):
    """Each task trains every ``period[t]`` steps (asynchronous training).

    The tasks trained on their own schedules of Ruder (arXiv:1706.05098, 2017), e.g. an
    auxiliary task updated less often than the main one.

    At step ``s`` the tasks with ``(s + offset) % period[t] == 0`` train
    together; ``offset`` is 0, so every task trains at step 0. Steps where no
    task is due are skipped (the counter moves on to the next due step). A step here is
    one draw, that is one batch: under ``Trainer(grad_accumulation=k)`` the periods count
    micro-batches, not optimizer updates (a task of period 2 with ``k = 2`` is in every
    update); give periods in micro-batches there.

    Parameters
    ----------
    periods : mapping str -> int
        Update period of each task, in steps (``1`` = every step): integers >= 1.
        A non-empty mapping such as a dict.
    seed : int
        Unused: the schedule is fixed.

    Examples
    --------
    ``main`` trains every step, ``aux`` every third step:

    >>> from multitask.training import PeriodicSampler
    >>> sampler = PeriodicSampler({"main": 1, "aux": 3})
    >>> [sampler.next() for _ in range(4)]
    [('main', 'aux'), ('main',), ('main',), ('main', 'aux')]

    Steps where no task is due are skipped (step 1 here, and step 5):

    >>> sampler = PeriodicSampler({"a": 2, "b": 3})
    >>> [sampler.next() for _ in range(4)], sampler.state_dict()
    ([('a', 'b'), ('a',), ('b',), ('a',)], {'step': 5})
    """

    def __init__(self, periods: Mapping[str, int], seed: int = 0):
        owner = type(self).__name__
        example = '{"main": 1, "aux": 3}'
        periods = _check_mapping(periods, "periods", owner, "update period in steps", example)
        super().__init__(list(periods), seed)
        checked = {t: check_int(periods[t], f"periods[{t!r}]", owner) for t in self.tasks}
        bad = {t: k for t, k in checked.items() if k < 1}
        if bad:
            raise ValueError(f"{owner}: update periods must be integers >= 1, got {bad}")
        self.periods = checked

    def draw(self, step: int) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if step % self.periods[t] == 0)

    @property
    def draws_every_task(self) -> bool:
        return all(k == 1 for k in self.periods.values())

    def next(self) -> tuple[str, ...]:
        out = self.draw(self.step)
        while not out:  # terminates: step 0 mod lcm(periods) has every task
            self.step += 1
            out = self.draw(self.step)
        self.step += 1
        return out


SAMPLERS = {
    "round_robin": RoundRobinSampler,
    "proportional": ProportionalSampler,
    "temperature": TemperatureSampler,
    "periodic": PeriodicSampler,
}


def make_sampler(name: str, sizes: Mapping[str, int], seed: int = 0) -> TaskSampler:
    """Build a sampler by name from the dataset size of each task.

    Parameters
    ----------
    name : {"round_robin", "proportional", "temperature"}
        ``"temperature"`` uses ``T = 5``; build :class:`TemperatureSampler`
        yourself for another ``T``. ``"periodic"``, a name of :data:`SAMPLERS`,
        is a ValueError that says so: its update periods are no function of the
        sizes; build :class:`PeriodicSampler` with them.
    sizes : mapping str -> int
        Number of samples (or batches) of each task's dataset, in a non-empty mapping such
        as a dict (a list or a pandas Series is a TypeError); ``"round_robin"`` reads only
        its task names.
    seed : int

    Returns
    -------
    TaskSampler

    Examples
    --------
    What ``Trainer(sampler="proportional")`` builds from its loaders' sizes:

    >>> from multitask.training import make_sampler
    >>> sampler = make_sampler("proportional", {"a": 300, "b": 100}, seed=0)
    >>> sampler
    ProportionalSampler(tasks=['a', 'b'], seed=0)
    >>> [sampler.next() for _ in range(4)]
    [('a',), ('b',), ('a',), ('b',)]
    >>> sampler = make_sampler("round_robin", {"a": 300, "b": 100, "c": 10})  # sizes unused
    >>> [sampler.next() for _ in range(4)]
    [('a',), ('b',), ('c',), ('a',)]
    >>> make_sampler("periodic", {"a": 300, "b": 100})
    Traceback (most recent call last):
    ...
    ValueError: sampler 'periodic' needs the update period of each task, ...
    """
    sizes = _check_mapping(sizes, "sizes", "make_sampler", *_SIZES)
    if name == "round_robin":
        return RoundRobinSampler(list(sizes), seed)
    if name in ("proportional", "temperature"):
        return SAMPLERS[name](sizes, seed=seed)
    if name == "periodic":
        example = {t: 1 + i % 2 for i, t in enumerate(sizes)}
        raise ValueError(
            "sampler 'periodic' needs the update period of each task, which the name cannot "
            f"carry: pass sampler=PeriodicSampler({example}) (a task with period k trains "
            "every k-th step)"
        )
    raise ValueError(
        f"unknown sampler {name!r}; pass a TaskSampler or one of "
        f"{', '.join(map(repr, SAMPLERS))} ('periodic' as a PeriodicSampler with its periods)"
    )
