"""The shared constructor-argument checks (multitask._params)."""

import math

import numpy as np
import pytest
import torch

from multitask._params import check_bool, check_int, check_names, check_real, check_seed


def test_check_real_takes_real_numbers_in_range_and_names_the_parameter():
    assert check_real(1, "a", "X") == 1.0 and isinstance(check_real(np.float32(2), "a", "X"), float)
    assert check_real(torch.tensor(0.5), "a", "X", low=0) == 0.5
    assert check_real(math.inf, "a", "X", finite=False) == math.inf
    for bad in ("0.5", True, None, [1.0], torch.ones(2)):
        with pytest.raises(TypeError, match=r"X: a must be a real number"):
            check_real(bad, "a", "X")
    with pytest.raises(ValueError, match=r"X: a must be a finite number >= 0, got nan"):
        check_real(math.nan, "a", "X", low=0)
    with pytest.raises(ValueError, match=r"X: a must be a number > 0, got nan"):
        check_real(math.nan, "a", "X", low=0, low_open=True, finite=False)
    with pytest.raises(ValueError, match=r"must be a finite number >= 0 and < 1, got 1"):
        check_real(1, "a", "X", low=0, high=1, high_open=True)
    with pytest.raises(ValueError, match=r"must be a finite number, got inf"):
        check_real(math.inf, "a", "X")
    assert check_real(0.0, "a", "X", low=0) == 0.0
    with pytest.raises(ValueError, match="> 0"):
        check_real(0.0, "a", "X", low=0, low_open=True)


def test_check_int_seed_bool_and_names():
    assert check_int(np.int64(3), "n", "X", low=1) == 3
    for bad in (1.5, 3.0, "3", True, math.nan):
        with pytest.raises(TypeError, match=r"X: n must be an integer >= 1"):
            check_int(bad, "n", "X", low=1)
    with pytest.raises(ValueError, match=r"X: n must be an integer >= 1, got 0"):
        check_int(0, "n", "X", low=1)
    assert check_seed(None, "seed", "X") is None and check_seed(7, "seed", "X") == 7
    with pytest.raises(ValueError, match=">= 0"):
        check_seed(-1, "seed", "X")
    assert check_bool(np.bool_(True), "f", "X") is True
    for bad in ("yes", 2, None, 0):
        with pytest.raises(TypeError, match="X: f must be True or False"):
            check_bool(bad, "f", "X")
    assert check_names(("a", "b"), "tasks", "X") == ["a", "b"]
    with pytest.raises(TypeError, match="non-empty strings"):
        check_names(["a", ""], "tasks", "X")
    with pytest.raises(TypeError, match="non-empty strings"):
        check_names(["a", 1], "tasks", "X")
    with pytest.raises(ValueError, match=r"more than once: \['a'\]"):
        check_names(["a", "b", "a"], "tasks", "X")
