"""Executors: identical results everywhere, failures are results, lost workers are retried."""

import os
import signal
import threading
import time

import pytest

from normbench.executors import LocalExecutor, SerialExecutor, create_executor
from normbench.spec import freeze_options


def fingerprint(result):
    return (result.outcome, [tuple(repr(v) for v in (p.step, p.train_loss, p.test_loss, p.test_accuracy))
                             for p in result.curve])


@pytest.mark.slow
def test_serial_and_local_give_bitwise_identical_metrics(make_spec):
    specs = [make_spec(seed=seed) for seed in range(3)] + [
        make_spec(seed=0, norm="group", norm_label="group", norm_options=freeze_options({"num_groups": 4}))]
    serial = {r.spec.run_id: fingerprint(r) for r in SerialExecutor().run(specs)}
    local = {r.spec.run_id: fingerprint(r) for r in LocalExecutor(workers=2).run(specs)}
    assert len(serial) == 4 and serial == local
    assert all(outcome == "completed" for outcome, _ in serial.values())


@pytest.mark.slow
def test_spawned_workers_match_forkserver_workers_and_serial(monkeypatch, make_spec):
    """Workers from the forkserver (default on Linux) and from spawn compute the same bits."""
    from normbench.executors import worker_context

    assert worker_context().get_start_method() in ("forkserver", "spawn")
    monkeypatch.setenv("NORMBENCH_START_METHOD", "spawn")
    assert worker_context().get_start_method() == "spawn"
    specs = [make_spec(seed=0), make_spec(seed=1)]
    spawned = {r.spec.run_id: fingerprint(r) for r in LocalExecutor(workers=2).run(specs)}
    assert spawned == {r.spec.run_id: fingerprint(r) for r in SerialExecutor().run(specs)}


@pytest.mark.slow
def test_longest_runs_are_dispatched_first_and_unused_workers_stop(make_spec):
    from normbench.executors import expected_cost

    short, long = make_spec(seed=0, steps=10), make_spec(seed=1, steps=40)
    by_epochs = make_spec(seed=2, steps=None, epochs=2.0, batch_size=4)
    assert expected_cost(long) > expected_cost(short) and expected_cost(by_epochs) == 0.5
    executor = LocalExecutor(workers=2)
    executor.start()
    started = [w.process for w in executor._started]
    assert len(started) == 2
    results = list(executor.run([short]))  # one run: the second worker is not needed
    assert [r.outcome for r in results] == ["completed"]
    assert all(not p.is_alive() for p in started)


@pytest.mark.slow
def test_a_raising_run_is_failed_and_the_others_finish(make_spec):
    specs = [make_spec(seed=0), make_spec(seed=1, optimizer="lbfgs"), make_spec(seed=2)]
    results = {r.spec.seed: r for r in LocalExecutor(workers=2).run(specs)}
    assert results[1].outcome == "failed" and "unknown optimizer 'lbfgs'" in results[1].error
    assert results[0].outcome == results[2].outcome == "completed"


def _kill_running(executor, times, victims):
    """Kill the worker running seed 0 `times` times (each new attempt gets killed again)."""
    deadline = time.time() + 60
    killed_pids = set()
    while len(killed_pids) < times and time.time() < deadline:
        for pid, spec in executor.busy_workers():
            if spec.seed == 0 and pid not in killed_pids:
                time.sleep(0.3)  # let it get into training
                os.kill(pid, signal.SIGKILL)
                killed_pids.add(pid)
                victims.append(pid)
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("kills, expected", [(1, "completed"), (2, "failed")])
def test_killed_worker_is_retried_once_then_failed(kills, expected, make_spec):
    specs = [make_spec(seed=0, steps=400), make_spec(seed=1), make_spec(seed=2)]
    executor = LocalExecutor(workers=2, retries=1)
    victims: list[int] = []
    killer = threading.Thread(target=_kill_running, args=(executor, kills, victims))
    killer.start()
    results = {r.spec.seed: r for r in executor.run(specs)}
    killer.join()
    assert len(victims) == kills
    assert sorted(results) == [0, 1, 2]  # nothing lost, nothing duplicated
    assert results[0].outcome == expected
    if expected == "failed":
        assert "worker process died 2 time(s)" in results[0].error
    assert results[1].outcome == results[2].outcome == "completed"


def test_unknown_executor():
    with pytest.raises(ValueError, match="allowed: serial, local, ray"):
        create_executor("threads")


@pytest.mark.slow
def test_ray_executor_matches_serial(make_spec):
    ray = pytest.importorskip("ray", reason="install the ray extra: pip install 'normbench[ray]'")
    specs = [make_spec(seed=seed) for seed in range(2)]
    serial = {r.spec.run_id: fingerprint(r) for r in SerialExecutor().run(specs)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = {r.spec.run_id: fingerprint(r) for r in create_executor("ray").run(specs)}
    finally:
        ray.shutdown()
    assert remote == serial
