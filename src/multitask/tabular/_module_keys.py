"""Module keys of the deep half: target names made safe for ``nn.ModuleDict``.

A target is a column of the user's table, and its name is arbitrary text
(``type``, ``income.level``, ``x.1`` from pandas' renaming of duplicates, even
the empty string). The architectures key their heads, gates and task experts
by task name in ``nn.ModuleDict``, which refuses a name that is empty, holds a
``"."``, or is an attribute of the dict (``type``, ``train``, ``values``,
``keys``, ...). So inside the module each target has a *module key*; everything
the user sees (metrics, predictions, the report, ``model.json``'s targets)
keeps the target's own name.

The mapping (:func:`module_keys`) is deterministic in the ordered target names:

1. a name ``nn.ModuleDict`` accepts is its own key (so ``print(model)`` shows
   it, and models saved before keys existed, whose names were all of this
   kind, read back unchanged);
2. any other name, in target order, gets its text with each ``"."`` replaced
   by ``"_"`` (``"target"`` when empty), and then, if that is refused or
   already a key, the first free ``<text>_1``, ``<text>_2``, ... .

It is saved with the model (``architecture.module_keys`` in ``model.json``)
and read back from there, so a saved model never depends on this rule.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["module_keys"]


def _accepted(name: str) -> bool:
    """Whether ``nn.ModuleDict`` takes ``name`` as a key (the architectures' own check)."""
    from multitask.nn.architectures._layers import key_error  # (torch: imported when used)

    return key_error(name) is None


def module_keys(names: Sequence[str]) -> dict[str, str]:
    """Module key of each target name (see the module docstring for the rule).

    Parameters
    ----------
    names : sequence of str
        Distinct target names, in task order.

    Returns
    -------
    keys : dict of str -> str
        Target name -> its key, in the order of ``names``; the keys are
        distinct and every one is accepted by ``nn.ModuleDict``.

    Examples
    --------
    >>> module_keys(["type", "quality", "a.b", "a_b"])
    {'type': 'type_1', 'quality': 'quality', 'a.b': 'a_b_1', 'a_b': 'a_b'}
    """
    # accepted names first, so that another target's key never takes a name's own key
    keys = {n: n for n in names if _accepted(n)}
    taken = set(keys.values())
    for name in names:
        if name in keys:
            continue
        base = str(name).replace(".", "_") or "target"
        key, i = base, 0
        while key in taken or not _accepted(key):
            i += 1
            key = f"{base}_{i}"
        keys[name] = key
        taken.add(key)
    return {n: keys[n] for n in names}
