"""read_table / write_table / staged_dir: formats, sniffing, clear errors, all-or-nothing writes."""

import os

import numpy as np
import pandas as pd
import pytest

from multitask.tabular import read_table, staged_dir, write_table


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=5), "b": list("xyzxy"), "c": np.arange(5)})


@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.pq", "t.csv.gz"])
def test_round_trip_is_exact(tmp_path, frame, name):
    path = write_table(frame, tmp_path / name)
    back = read_table(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_sniffed_without_extension(tmp_path, frame, fmt):
    path = tmp_path / "table.data"
    getattr(frame, f"to_{fmt}")(path, index=False)
    pd.testing.assert_frame_equal(read_table(path), frame, check_exact=True)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "e.csv", "is empty"),
        (b"a,b\n", "h.csv", "has no data rows"),
        (b"\n\n", "blank.csv", "is empty"),
        (b"a,b\n\xe9t\xe9,1\n", "latin1.csv", "not valid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "img.png", "neither CSV nor Parquet"),
        (b"a,b\n1,2\n", "fake.parquet", "not a valid Parquet file"),
        (b'{"a": [1, 2]}', "t.json", "neither CSV nor Parquet"),
        (b'a,b\n1,"2\n3,4', "bad.csv", "not a well-formed CSV"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_staged_dir_is_all_or_nothing(tmp_path):
    out = tmp_path / "model"
    with pytest.raises(RuntimeError), staged_dir(out) as stage:
        (stage / "a.json").write_text("{}")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind
    with staged_dir(out) as stage:
        (stage / "a.json").write_text("{}")
        os.chmod(stage / "a.json", 0o600)
        assert not (out / "a.json").exists()  # nothing visible before the end
    assert (out / "a.json").read_text() == "{}"
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_bom_and_mislabelled_parquet(tmp_path, frame):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfa,b\n1,x\n")
    assert list(read_table(tmp_path / "bom.csv").columns) == ["a", "b"]
    frame.to_parquet(tmp_path / "really_parquet.csv", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "really_parquet.csv"), frame)


def test_text_columns_keep_numeric_looking_levels_as_written(tmp_path):
    """A column holding only "1", "01" and an empty cell reads as text, not as 1.0."""
    path = tmp_path / "t.csv"
    path.write_text("x,g\n0.5,1\n1.5,\n2.5,01\n")
    frame = read_table(path, text_columns=["g", "not_in_file"])
    assert frame["g"].iloc[0] == "1" and pd.isna(frame["g"].iloc[1]) and frame["g"].iloc[2] == "01"
    assert frame["x"].dtype == np.float64
    assert read_table(path)["g"].dtype == np.float64  # what pandas guesses without
