"""Claims in worker processes: the same numbers as a sequential run, in claim order, and nothing
left running after SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from proofs_check import cli, registry
from proofs_check.parallel import MAX_AUTO_JOBS, available_cpus, parallelizable, resolve_jobs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHEAP = ["--only", "C1-predictive", "--only", "C3", "--only", "C5", "--only", "S7-exact-limit"]


def _measured(path):
    with open(path, encoding="utf-8") as fh:
        payload = json.load(fh)
    return [(c["id"], c["status"], [(m["name"], m["error"], m["tolerance"]) for m in c["measurements"]],
             c["notes"]) for c in payload["claims"]]


def test_workers_give_the_numbers_of_a_sequential_run_in_claim_order(tmp_path):
    assert cli.main(["run", *CHEAP, "--quick", "--quiet", "--jobs", "1", "--json", str(tmp_path / "a.json")]) == 0
    assert cli.main(["run", *CHEAP, "--quick", "--quiet", "--jobs", "2", "--json", str(tmp_path / "b.json")]) == 0
    sequential, parallel = _measured(tmp_path / "a.json"), _measured(tmp_path / "b.json")
    assert [c[0] for c in parallel] == ["C1-predictive", "C3", "C5", "S7-exact-limit"]
    assert parallel == sequential  # bit for bit: each claim's random numbers depend on the seed alone


def test_resolve_jobs():
    assert resolve_jobs(None, 100) == min(available_cpus(), MAX_AUTO_JOBS)
    assert resolve_jobs(8, 3) == 3 and resolve_jobs(2, 1) == 1 and resolve_jobs(1, 10) == 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="invalid jobs"):
            resolve_jobs(bad, 4)


def test_only_the_package_claims_go_to_workers(monkeypatch):
    claims = registry.all_claims()
    assert parallelizable(claims)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.claim("ZZ9-local", statement="s", reference="test", kind="paper")(lambda ctx: None)
    assert not parallelizable(registry.all_claims())


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_sigterm_ends_every_worker(tmp_path, group_processes, sigterm):
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "proofs_check", "run", "--only", "C9", "--only", "C10",
                             "--only", "C2", "--jobs", "2"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(group_processes(proc.pid)) < 3:
            time.sleep(0.05)  # the command, its two workers (and multiprocessing's resource tracker)
        assert proc.poll() is None and len(group_processes(proc.pid)) >= 3
        time.sleep(1.0)
        _, err, stopped = sigterm(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert stopped < 2.0
    assert "terminated (SIGTERM)" in err.splitlines()[-1] and "Traceback" not in err
    deadline = time.monotonic() + 5
    while group_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_processes(proc.pid) == []
