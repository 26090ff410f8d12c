"""`streamlit run` flags for where the dashboard is served: the host names it answers, and in shared mode
a toolbar without the developer menu.

A page on any domain can point that domain at 127.0.0.1 (DNS rebinding) and, without this list, talk to
the dashboard as if it were its own: open a session, start runs, upload files. So the server answers
only the names it is really reached by: the loopback names, and when it is shared (`HOST=...`), that
address, or for `HOST=0.0.0.0` this machine's own names and addresses. ALLOWED_HOSTS adds names that
reach it some other way (a reverse proxy's, a DNS name), separated by spaces or commas.

Shared (HOST not loopback), the toolbar has no developer menu (client.toolbarMode = "viewer"): its
"Clear cache" empties every cache of every user at once. The server still obeys a client that sends
that message itself (Streamlit offers no setting against it); ui.cache keeps FashionMNIST in memory
outside Streamlit's caches, so such a clear costs a reload of little else.

    python -m scripts.serve_flags HOST   # --server.allowedHosts=localhost ... [--client.toolbarMode=viewer]
"""

import ipaddress
import os
import socket
import sys

import psutil

LOOPBACK = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


def allowed_hosts(host: str, extra: str = "") -> list[str]:
    """The names a server listening on `host` answers; `extra` as ALLOWED_HOSTS gives it."""
    names = list(LOOPBACK)
    if host in WILDCARDS:
        names += _this_machine()
    elif shared(host):
        names.append(host)
    names += [name for name in extra.replace(",", " ").split() if name]
    return list(dict.fromkeys(name.lower() for name in names))  # in order, once each


def _this_machine() -> list[str]:
    """What another machine may type to reach this one: its names and every address of its interfaces."""
    names = [socket.gethostname(), socket.getfqdn()]
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.append(address.address.split("%")[0])  # fe80::1%eth0: the zone is not in a Host header
    return names


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shared(host: str) -> bool:
    return host not in LOOPBACK and not _is_loopback(host)


def serve_flags(host: str, extra: str = "") -> list[str]:
    flags = [f"--server.allowedHosts={name}" for name in allowed_hosts(host, extra)]
    return [*flags, "--client.toolbarMode=viewer"] if shared(host) else flags


def main(argv: list[str]) -> int:
    print(" ".join(serve_flags(argv[0] if argv else "127.0.0.1", os.environ.get("ALLOWED_HOSTS", ""))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
