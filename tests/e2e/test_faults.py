"""Faults of the driver: SIGTERM/SIGINT stop cleanly, SIGKILL then rerun trains exactly what is
missing, two drivers never share a store, newer stores are refused."""

import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest
import yaml

pytestmark = pytest.mark.slow  # each test drives `normbench run` in a subprocess

SUITE = {
    "name": "faults",
    "dataset": "digits",
    "models": [{"name": "mlp", "options": {"widths": [16]}}],
    "norms": ["none", "bn", "ln"],
    "batch_sizes": [8, 16],
    "seeds": 4,
    "steps": 150,
    "eval_every": 50,
    "optimizer": {"name": "sgd", "lr": 0.05},
}
TOTAL = 3 * 2 * 4


def _default_sigint():
    """In the child before exec: SIGINT back to its default, so that Python turns it into
    KeyboardInterrupt even when pytest itself was started as a background job (bash starts those
    with SIGINT ignored, the child inherits that, and Python keeps an ignored SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(tmp_path, out, *extra):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    return subprocess.Popen(
        [sys.executable, "-m", "normbench", "run", str(suite), "--out", str(out), "--executor", "serial",
         "--no-report", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
    )


def stored(out):
    path = out / "results.sqlite"
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(path, timeout=5)
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def has_runs_table(out):
    """Whether the store exists and holds its schema (read-only: never creates the file)."""
    path = out / "results.sqlite"
    if not path.exists():
        return False
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0] == 1
    except sqlite3.OperationalError:
        return False


def lock_holder(out):
    """The pid a driver writes into OUT's lock file once it holds the lock (None before)."""
    try:
        text = (out / ".normbench.lock").read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def wait_until(condition, process, what, timeout=90):
    """Poll ``condition`` until it holds; fail if ``process`` exits or ``timeout`` s pass first."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not in time (exit {process.poll()})")


def wait_for_runs(out, count, process, timeout=90):
    wait_until(lambda: stored(out) >= count, process, f"{count} runs stored", timeout)


def check_store(out, points=4):
    conn = sqlite3.connect(out / "results.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    runs = conn.execute("SELECT COUNT(*), COUNT(DISTINCT run_id) FROM runs").fetchone()
    assert runs[0] == runs[1]  # no duplicated rows
    orphan = conn.execute("SELECT COUNT(*) FROM curves WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchone()[0]
    assert orphan == 0
    complete = conn.execute(
        "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM curves c WHERE c.run_id = r.run_id) != ?", (points,)
    ).fetchone()[0]
    assert complete == 0  # every stored run has its whole curve (steps 0, 50, 100, 150)
    return runs[0]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_and_keeps_finished_runs(tmp_path, sig, code):
    out = tmp_path / "out"
    process = start(tmp_path, out)
    wait_for_runs(out, 2, process)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "finished runs are stored" in err and "Traceback" not in err
    assert 2 <= check_store(out) < TOTAL


def test_sigkill_then_rerun_trains_exactly_the_missing_runs(tmp_path):
    out = tmp_path / "out"
    process = start(tmp_path, out)
    wait_for_runs(out, 3, process)
    process.kill()
    process.wait(timeout=30)
    kept = check_store(out)
    assert 3 <= kept < TOTAL
    again = start(tmp_path, out)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"{kept} already stored" in " ".join(err.split())
    assert check_store(out) == TOTAL


def test_second_driver_on_the_same_output_is_refused(tmp_path):
    out = tmp_path / "out"
    first = start(tmp_path, out, "--set", "steps=3000")  # long enough to be still training below
    try:
        # Holding the lock: its pid is in the lock file, and the store it opens next has its schema.
        wait_until(lambda: lock_holder(out) == first.pid and has_runs_table(out), first, "first driver holds the lock")
        assert first.poll() is None
        first.send_signal(signal.SIGSTOP)  # paused, it keeps the lock and leaves the cores to the second driver
        second = start(tmp_path, out, "--set", "steps=3000")
        _, err = second.communicate(timeout=60)
    finally:
        first.kill()
        first.wait(timeout=30)
    assert second.returncode == 2
    assert "another `normbench run` is writing here" in " ".join(err.split())
    check_store(out, points=3000 // 50 + 1)


def test_newer_store_is_refused_by_run_and_report(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    conn = sqlite3.connect(out / "results.sqlite")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    conn.commit()
    conn.close()
    process = start(tmp_path, out)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "newer normbench" in err
    report = subprocess.run([sys.executable, "-m", "normbench", "report", str(out)], capture_output=True, text=True)
    assert report.returncode == 2 and "newer normbench" in report.stderr
