"""Start `tuner serve` as a real subprocess on a free loopback port (helpers, imported by the tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def serve(home: Path, port: int, **env: str) -> Iterator[subprocess.Popen]:
    """Run `tuner serve` in its own process group until the block ends (then kill the group)."""
    log = open(home / f"serve-{port}-{time.monotonic_ns()}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "TUNER_HOME": str(home), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"tuner serve exited with {proc.returncode}: {Path(log.name).read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=120, what="tuner serve to answer /healthz")
        yield proc
    except BaseException:
        log.flush()
        print(f"--- tuner serve log (tail) ---\n{Path(log.name).read_text()[-6000:]}")  # shown by pytest on failure
        raise
    finally:
        kill_group(proc)
        log.close()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the server and every process it started (Ray's included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def processes_with(marker: str) -> dict[int, str]:
    """Live processes whose environment holds ``marker`` (pid -> command line): what a
    server started with the marker in its environment started in turn, Ray's raylet,
    agents and workers included, whatever their parent or process group now.
    Zombies, already ended, are left out (Linux ``/proc``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            found[int(entry.name)] = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
            )
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def kill_marked(marker: str) -> None:
    """SIGKILL every process whose environment holds ``marker`` (see :func:`processes_with`)."""
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def listening_ports(pids: set[int]) -> set[int]:
    """TCP ports on which any of ``pids`` listens (Linux ``/proc``)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
