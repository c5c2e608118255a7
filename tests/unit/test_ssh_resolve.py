"""Resolving an SSH endpoint from the inventory and an OpenSSH client config (pure: files only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hybridctl.backends.ssh import hop_endpoint, resolve
from hybridctl.core.inventory.models import SshEndpoint, jump_hops

CONFIG = """Host bastion
  HostName bastion.example
  User jump
  Port 2222
Host app
  HostName 10.0.0.5
  ProxyJump bastion,inner
  ProxyCommand nc %h %p
Host legacy
  HostName 10.0.0.6
  ProxyCommand ssh -W %h:%p bastion
Host direct
  HostName 10.0.0.7
  ProxyJump none
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return path


def test_proxyjump_from_the_config_wins_over_its_proxycommand(config: Path) -> None:
    resolved = resolve(SshEndpoint(host="app", config_file=str(config)))
    assert (resolved.hostname, resolved.jump, resolved.proxy_command) == ("10.0.0.5", ("bastion", "inner"), None)
    legacy = resolve(SshEndpoint(host="legacy", config_file=str(config)))
    assert legacy.jump == () and legacy.proxy_command == "ssh -W 10.0.0.6:22 bastion"
    assert resolve(SshEndpoint(host="direct", config_file=str(config))).jump == ()


def test_the_inventory_jump_overrides_the_config(config: Path) -> None:
    resolved = resolve(SshEndpoint(host="legacy", config_file=str(config), jump=["ops@gw:2200", "inner"]))
    assert resolved.jump == ("ops@gw:2200", "inner") and resolved.proxy_command is None


def test_hop_forms(config: Path) -> None:
    via = SshEndpoint(host="app", config_file=str(config), key="/k", known_hosts="/kh")
    hop = hop_endpoint("ops@gw.example:2200", via)
    assert (hop.host, hop.port, hop.user, hop.key, hop.known_hosts) == ("gw.example", 2200, "ops", "/k", "/kh")
    assert (hop_endpoint("ssh://[2001:db8::1]:23", via).host, hop_endpoint("ssh://[2001:db8::1]:23", via).port) == (
        "2001:db8::1",
        23,
    )
    alias = resolve(hop_endpoint("bastion", via))
    assert (alias.hostname, alias.port, alias.user) == ("bastion.example", 2222, "jump")


def test_jump_lists_and_chains() -> None:
    assert jump_hops("a, b,c") == ["a", "b", "c"]
    assert jump_hops(["a,b", "c"]) == ["a", "b", "c"]
    assert jump_hops(None) == []
    for bad in ("", "a b", "user@", "a/b"):
        with pytest.raises(ValidationError, match="jump"):
            SshEndpoint(host="x", jump=bad)
