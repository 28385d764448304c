"""The shared-machine meter: CPU of processes outside the run is foreign, the run's own is not."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from loadtests import gate, machine
from loadtests.gate import Policy, Verdict
from tests.loadtests.helpers import LIST, endpoint, run_stats, targets

BURN_ONE_SECOND = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"


def test_cpu_of_the_runs_own_children_is_not_foreign() -> None:
    before = machine._own_seconds()
    subprocess.run([sys.executable, "-c", BURN_ONE_SECOND], check=True, timeout=60)  # exited and waited for
    assert machine._own_seconds() - before >= 0.9


def test_cpu_of_a_process_outside_the_run_is_foreign(tmp_path: Path) -> None:
    done = tmp_path / "done"
    script = BURN_ONE_SECOND + f"open({str(done)!r}, 'w').close()\n"
    with machine.CpuMeter() as meter:
        # The shell exits at once: the busy process is re-parented, no longer ours.
        subprocess.run(
            ["sh", "-c", f'"{sys.executable}" -c "$0" >/dev/null 2>&1 &', script], check=True, timeout=60
        )
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert done.exists()
    assert meter.foreign_cores is not None and meter.foreign_cores * meter.elapsed >= 0.9


def test_a_busy_shared_machine_makes_the_run_inconclusive() -> None:
    reads = {5.0: 4975, 300.0: 25}
    busy = gate.evaluate(run_stats(endpoint(LIST, reads), foreign_cpu_cores=0.8), targets(), Policy())
    assert busy.verdict is Verdict.INCONCLUSIVE and busy.exit_code == 4
    assert "other processes used 0.80 CPU cores on average during the run (more than 0.25)" in busy.summary()
    quiet = gate.evaluate(run_stats(endpoint(LIST, reads), foreign_cpu_cores=0.05), targets(), Policy())
    assert quiet.verdict is Verdict.PASS
    smoke = gate.evaluate(
        run_stats(endpoint(LIST, reads), foreign_cpu_cores=0.8), targets(), gate.POLICIES["smoke"]
    )
    assert smoke.verdict is Verdict.PASS  # a smoke run judges no latency
