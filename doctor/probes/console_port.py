"""Node-local probe (`--node-local`): who holds the console port on this host, and does it
answer like Cockpit.

/proc/net/tcp and tcp6 list the listening sockets of this network namespace (the host's, when
run on a node or in a hostNetwork pod); each socket's inode leads through /proc/<pid>/fd to
the processes holding it. The listener is then asked for Cockpit's `/ping` fingerprint
(`{"service": "cockpit"}`) over HTTP and HTTPS, which share the port.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from pathlib import Path

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.probe_results import Holder, Listener, PortHolders
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.http_get import get
from registry_doctor.doctor.snapshot import Snapshot

PROC = Path("/proc")
TCP_LISTEN = "0A"
# kubelet cgroups name the pod: .../kubepods/burstable/pod<uid>/... (systemd driver: '_' for '-')
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_]"
                      r"[0-9a-f]{12})")
SHOWN_ARGUMENTS = 3  # a command line may carry secrets: show the program and a few arguments


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> PortHolders:
    deadline = time.monotonic() + timeout
    port = config.console_port
    listeners = listening_sockets(port, PROC)
    if not listeners:
        return PortHolders(port, (), (), hidden=False, ping={})
    holders, hidden = socket_holders({s.inode for s in listeners}, PROC, deadline)
    return PortHolders(port, tuple(listeners), tuple(holders), hidden,
                       cockpit_ping(listeners[0].connect_address, port, deadline))


def listening_sockets(port: int, proc: Path) -> list[Listener]:
    found: list[Listener] = []
    readable = False
    for table in ("tcp", "tcp6"):
        try:
            text = (proc / "net" / table).read_text()
        except OSError:
            continue
        readable = True
        found.extend(s for s in parse_proc_net(text) if s.port == port)
    if not readable:
        raise ProbeError(f"cannot read {proc}/net/tcp: --node-local needs Linux /proc")
    return found


def parse_proc_net(text: str) -> list[Listener]:
    """Listening sockets in the format of /proc/net/tcp{,6}."""
    listeners = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        try:
            address_hex, port_hex = fields[1].split(":")
            listeners.append(Listener(_address(address_hex), int(port_hex, 16), int(fields[9])))
        except ValueError:
            continue
    return listeners


def _address(hex_address: str) -> str:
    """The kernel prints each 32-bit word of the address in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    if len(raw) not in (4, 16):
        raise ValueError(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def socket_holders(inodes: set[int], proc: Path, deadline: float) -> tuple[list[Holder], bool]:
    """Processes with one of the socket `inodes` open, and whether some processes could not be
    inspected (another user's, without root)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    holders, hidden = [], False
    for entry in _pid_dirs(proc):
        if time.monotonic() > deadline:
            return holders, True
        try:
            links = _fd_links(entry.path + "/fd")
        except PermissionError:
            hidden = True
            continue
        except OSError:  # the process ended meanwhile
            continue
        if links & wanted:
            holders.append(_holder(int(entry.name), Path(entry.path)))
    return holders, hidden


def _fd_links(fd_dir: str) -> set[str]:
    links = set()
    for fd in os.scandir(fd_dir):
        try:
            links.add(os.readlink(fd.path))
        except OSError:  # closed meanwhile
            continue
    return links


def _pid_dirs(proc: Path) -> list[os.DirEntry]:
    try:
        return [e for e in os.scandir(proc) if e.name.isdigit()]
    except OSError as error:
        raise ProbeError(f"cannot list {proc}: {error.strerror}") from None


def _holder(pid: int, folder: Path) -> Holder:
    try:
        argv = (folder / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        argv = []
    argv = [a for a in argv if a] or [_read(folder / "comm").strip() or f"pid {pid}"]
    match = _POD_UID.search(_read(folder / "cgroup"))
    return Holder(pid, shown_command(argv),
                  match.group(1).replace("_", "-") if match else None)


def shown_command(argv: list[str]) -> str:
    """The program and its first arguments, values after '=' hidden: enough to recognise it,
    not enough to leak a password given on its command line."""
    shown = [argv[0]] + [a.split("=", 1)[0] + "=..." if "=" in a else a
                         for a in argv[1:SHOWN_ARGUMENTS + 1]]
    return " ".join(shown) + (" ..." if len(argv) > SHOWN_ARGUMENTS + 1 else "")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def cockpit_ping(address: str, port: int, deadline: float) -> dict[str, str]:
    """scheme -> "cockpit" when /ping answers Cockpit's fingerprint, else what it answered."""
    host = f"[{address}]" if ":" in address else address
    answers = {}
    for position, scheme in enumerate(("http", "https")):
        budget = (deadline - time.monotonic()) / (2 - position)
        if budget <= 0:
            answers[scheme] = "not asked: probe deadline reached"
            continue
        try:
            answer = get(f"{scheme}://{host}:{port}/ping", budget)
        except ProbeError as error:
            answers[scheme] = str(error)
            continue
        answers[scheme] = "cockpit" if _is_cockpit(answer.body) else \
            f"HTTP {answer.status}, not Cockpit's fingerprint"
    return answers


def _is_cockpit(body: bytes) -> bool:
    try:
        return json.loads(body).get("service") == "cockpit"
    except (ValueError, AttributeError):
        return False
