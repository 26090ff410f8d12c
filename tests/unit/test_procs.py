"""core.base.procs.pid_alive: running, exited, zombie, and values that are no pid."""

import os
import subprocess
import sys

from core.base.procs import pid_alive
from tests.conftest import wait_for


def test_a_running_process_is_alive_and_an_exited_one_is_not():
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()  # collected: the pid is free
    assert not pid_alive(child.pid)


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Exited but not collected: the process table keeps it as a zombie until wait().
        assert wait_for(lambda: not pid_alive(child.pid), timeout=10)
        assert os.path.exists(f"/proc/{child.pid}")  # still there, as a zombie
    finally:
        child.wait()


def test_values_that_are_no_pid_are_not_alive():
    assert not any(pid_alive(value) for value in (None, 0, -1, "123", 1.5))
