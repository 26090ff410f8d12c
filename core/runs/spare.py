"""A training worker started ahead of time, so a run's first loss comes seconds sooner.

A new worker process spends most of its first seconds importing PyTorch (and the `torch._dynamo`
that the optimizer's constructor imports). So while nothing trains, the dashboard keeps one spare
worker per run store (every page's sidebar asks for it): it listens on a Unix socket at once, then
imports all that and reads FashionMNIST at low priority while the user picks settings.
`core.runs.control.start` hands it the new run's directory together with the device lock's file descriptor
(SCM_RIGHTS), and the spare becomes that run's worker. Nothing depends on a spare being there:
without one (or when it does not answer) `start` launches a worker as before.

A spare exits by itself when its server goes away or when nobody has claimed it for IDLE_S.
"""

import contextlib
import importlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.base.errors import StudioError
from core.base.fsutil import atomic_write_bytes
from core.base.paths import PROJECT_ROOT
from core.base.priority import WORKER_NICE, lower_priority
from core.base.procs import adopt_child, exit_code, leave, pid_alive, process_started, stop_on_signals
from core.base.runfiles import MARKER, parse_object, read_object

IDLE_S = 15 * 60.0  # an unclaimed spare exits after this (it holds about 700 MB, as a worker does)
READY_WAIT_S = 5.0  # how long a start waits for a just-started spare to listen
CLAIM_WAIT_S = 5.0  # how long a start waits for the spare's "ok" before it starts a worker itself
MESSAGE_WAIT_S = 1.0  # a claimant sends at once: a silent connection must not hold up a real claim
GO_WAIT_S = 2 * CLAIM_WAIT_S  # the spare waits longer for "go" than a claimant waits for "ok"
PID_FILE = ".spare.pid"
_MESSAGE_MAX = 16_384


def enabled() -> bool:
    """On unless STUDIO_SPARE_WORKER=0 (the page tests turn it off: they start no real runs)."""
    return os.environ.get("STUDIO_SPARE_WORKER", "1") != "0"


def _socket_path(root: Path, pid: int) -> Path:
    return root / f".spare-{pid}.sock"


def _read_pid(root: Path) -> int | None:
    """The pid in PID_FILE if that process is still the spare that wrote it (not a reused pid)."""
    pid, started = _recorded(root)
    return pid if pid is not None and pid_alive(pid, started=started) else None


def _recorded(root: Path) -> tuple[int | None, float | None]:
    """PID_FILE's "PID STARTED" (STARTED: when that process began, or absent)."""
    try:
        fields = (root / PID_FILE).read_text().split()
        return int(fields[0]), float(fields[1]) if len(fields) > 1 else None
    except (OSError, ValueError, IndexError):
        return None, None


def _forget(root: Path, pid: int) -> None:
    """Remove PID_FILE if it still names `pid`: that spare is taken or gone, the next one is new."""
    if _recorded(root)[0] == pid:
        with contextlib.suppress(OSError):
            (root / PID_FILE).unlink()


def ensure(root: Path) -> int | None:
    """Start a spare for the run store `root` unless one is alive; returns its pid (None if disabled)."""
    if not enabled():
        return None
    root.mkdir(parents=True, exist_ok=True)
    pid = _read_pid(root)
    if pid is not None:
        return pid

    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.runs.spare", str(root), str(WORKER_NICE), str(os.getpid())],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=devnull,
            stderr=devnull,
            start_new_session=True,  # like a worker: a run it becomes outlives the server's Ctrl-C
        )
    adopt_child(proc)  # reaped with the workers, so it never stays a zombie
    atomic_write_bytes(root / PID_FILE, f"{proc.pid} {process_started(proc.pid) or ''}".encode())
    return proc.pid


def ready_pid(root: Path) -> int | None:
    """The pid of this store's live spare, if it has one (it may still be warming up)."""
    return _read_pid(root) if enabled() else None


def claim(root: Path, pid: int, directory: Path, init_from: Path | None, lock_fd: int) -> bool:
    """Hand the run in `directory` to the spare `pid`; False when it cannot take it (start a worker then).

    The caller holds the device lock; the spare receives a duplicate of `lock_fd`, so the lock stays
    held for as long as the spare (now the run's worker) lives.
    """
    path = _socket_path(root, pid)
    deadline = time.monotonic() + READY_WAIT_S
    while not path.exists():  # it listens within a moment of starting, before it imports PyTorch
        if time.monotonic() > deadline or not pid_alive(pid):
            return False
        time.sleep(0.05)
    message = json.dumps({"run_dir": str(directory), "init_from": str(init_from) if init_from else None})
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CLAIM_WAIT_S)
            conn.connect(str(path))
            socket.send_fds(conn, [message.encode()], [lock_fd])
            if conn.recv(16) != b"ok":
                return False
            # The last word is ours: a spare that answered too late finds this socket closed, no "go",
            # and lets the run (and its copy of the lock) go, while this start launches a worker.
            conn.sendall(b"go")
    except OSError:
        return False
    _forget(root, pid)  # taken: the next start needs a new spare
    return True


# ---- the spare process ----------------------------------------------------------------------------------


def serve(
    root: Path, *, nice: int, idle_s: float = IDLE_S, parent: int | None = None
) -> tuple[Path, Path | None] | None:
    """Run in the spare: listen, warm up, and wait for a claim. Returns (run dir, init_from), or None.

    It listens before warming up, so a start never waits for it: a run claimed early simply begins
    when the imports are done. On a claim, stdout and stderr move to the run's worker.log and the
    device lock's descriptor stays open for the rest of the process's life. None: nobody claimed it
    within `idle_s`, the server that started it (`parent`, by default this process's parent) went away,
    or the run store did (a test's temporary folder).
    """
    parent = os.getppid() if parent is None else parent
    path = _socket_path(root, os.getpid())
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)  # the socket is for this user only
        try:
            server.bind(str(path))
        finally:
            os.umask(old_umask)
        server.listen(4)
        claimed: list = []
        args = (server, root, idle_s, parent, claimed)
        waiter = threading.Thread(target=_wait_for_claim, args=args, daemon=True)
        waiter.start()
        lower_priority(nice)  # before the imports: warming up must not slow the page the user is on
        _warm_up()
        waiter.join()
        return claimed[0] if claimed else None
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _forget(root, os.getpid())


def _wait_for_claim(server: socket.socket, root: Path, idle_s: float, parent: int, claimed: list) -> None:
    server.settimeout(1.0)
    deadline = time.monotonic() + idle_s
    # The parent is told by the server, not read here: a server that died before this process looked
    # would leave it waiting for the whole IDLE_S, re-parented to init.
    while time.monotonic() < deadline and os.getppid() == parent and root.is_dir():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            job = _receive(conn, root)
        if job is not None:
            claimed.append(job)
            return


def _receive(conn: socket.socket, root: Path) -> tuple[Path, Path | None] | None:
    """One claim: a JSON message and the lock's descriptor, from a process of this same user.

    Any claim it refuses, or that is not confirmed, has its descriptors closed at once: a spare that
    kept a copy of the device lock would keep every later start out.
    """
    fds: list[int] = []
    log = None
    try:
        conn.settimeout(MESSAGE_WAIT_S)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            return None
        data, fds, flags, _addr = socket.recv_fds(conn, _MESSAGE_MAX, 1)
        if len(fds) != 1 or flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
            raise ValueError("a claim carries one descriptor and a short message")
        directory, init_from = _job(parse_object(data), root)
        log = os.open(directory / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        conn.sendall(b"ok")
        conn.settimeout(GO_WAIT_S)
        if _read_exactly(conn, 2) != b"go":
            raise ValueError("the claimant gave up")
    except (OSError, ValueError, KeyError, TypeError, StudioError):
        for fd in [*fds, *([log] if log is not None else [])]:
            os.close(fd)
        return None
    os.set_inheritable(fds[0], False)  # held (never closed) until this process exits
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return directory, init_from


def _job(message: dict, root: Path) -> tuple[Path, Path | None]:
    """The run a claim names, if it is a queued run of this store that its starter gave to this spare."""
    directory = Path(message["run_dir"])
    init_from = Path(message["init_from"]) if message.get("init_from") else None
    if directory.resolve().parent != root.resolve() or not (directory / MARKER).is_file():
        raise ValueError("not a run of this store")
    status = read_object(directory / "status.json")
    if status.get("status") != "queued" or status.get("pid") != os.getpid():
        raise ValueError("not a run handed to this spare")
    return directory, init_from


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _warm_up() -> None:
    """What a worker otherwise does in its first seconds: import PyTorch and read the dataset."""
    with contextlib.suppress(Exception):  # a failure here shows up, in words, when the run starts
        # PyTorch, heavy, on purpose here: this is the warming up.
        import torch._dynamo  # noqa: F401  (imported lazily by the optimizer's constructor: about 1 s)

        from core.data import fashion as data

        data.load_split("train")
        data.load_split("test")
        importlib.import_module("torch.utils.tensorboard")  # the run's event files (core.runs.board): 0.2 s
        from core.runs import cluster, remote

        if cluster.address():  # runs go to a Ray cluster: connect now, not when the run is handed over
            remote.warm_up()


def main(argv: list[str]) -> int:
    """`python -m core.runs.spare RUNS_DIR NICE [SERVER_PID]`, from ensure(): wait for a run, then train it
    as a worker."""
    job = serve(Path(argv[0]), nice=int(argv[1]), parent=int(argv[2]) if len(argv) > 2 else None)
    if job is None:
        return 0
    # PyTorch, which the launcher brings, is imported once the spare is listening (see _warm_up).
    from core.runs.launcher import run_worker
    from core.runs.store import STOP_FILE

    directory, init_from = job
    stop_on_signals(directory / STOP_FILE)
    status = run_worker(directory, init_from=init_from, echo=print)  # its priority is lowered already
    leave(exit_code(status))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
