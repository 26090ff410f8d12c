"""scripts.serve_flags: the names `make run` answers, and the toolbar it shows, loopback or shared."""

import socket

from scripts.serve_flags import LOOPBACK, allowed_hosts, serve_flags


def test_loopback_answers_only_loopback_names_and_keeps_the_developer_menu():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert allowed_hosts(host) == list(LOOPBACK)
        assert "--client.toolbarMode=viewer" not in serve_flags(host)


def test_a_shared_address_is_answered_besides_loopback_and_hides_the_developer_menu():
    assert allowed_hosts("192.168.1.20") == [*LOOPBACK, "192.168.1.20"]
    flags = serve_flags("192.168.1.20", "Studio.Example.org, lab.test")
    assert "--server.allowedHosts=studio.example.org" in flags and "--server.allowedHosts=lab.test" in flags
    assert flags[-1] == "--client.toolbarMode=viewer"


def test_every_address_answers_this_machines_names_and_nothing_else():
    names = allowed_hosts("0.0.0.0")
    assert socket.gethostname().lower() in names and "127.0.0.1" in names
    assert len(names) == len(set(names)) and "*" not in names and "attacker.test" not in names
