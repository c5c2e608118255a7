"""known_hosts, parsed once per file version: each client gets its target's keys, as a full load
would have given them (plain and hashed names, a non-default port), and a changed file is read
again (real files, keys made by cryptography)."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hybridctl.backends.ssh import _KnownHosts, _server_key_name


def public_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode()


def full_load(path: Path, name: str) -> dict[str, str]:
    keys = paramiko.HostKeys(str(path)).lookup(name)
    return {t: k.get_base64() for t, k in (keys or {}).items()}


def b64(keys: dict[str, paramiko.PKey]) -> dict[str, str]:
    return {t: k.get_base64() for t, k in keys.items()}


def test_a_clients_keys_equal_a_full_loads(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    plain, other, hashed, ported = public_line(), public_line(), public_line(), public_line()
    salted = paramiko.HostKeys.hash_host("10.0.0.3")
    known.write_text(
        f"10.0.0.1 {plain}\n10.0.0.2,alias2 {other}\n{salted} {hashed}\n[10.0.0.4]:2222 {ported}\n# a comment\n"
    )
    for name in ("10.0.0.1", "10.0.0.2", "alias2", "10.0.0.3", "[10.0.0.4]:2222", "10.0.0.4", "10.9.9.9"):
        assert b64(_KnownHosts.keys_for(known, name)) == full_load(known, name), name
    assert b64(_KnownHosts.keys_for(known, "10.0.0.3")) == {"ssh-ed25519": hashed.split()[1]}
    assert _KnownHosts.keys_for(known, "10.9.9.9") == {}


def test_a_changed_file_is_read_again_and_a_missing_one_knows_nothing(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    assert _KnownHosts.keys_for(known, "10.0.0.1") == {}
    first = public_line()
    known.write_text(f"10.0.0.1 {first}\n")
    assert b64(_KnownHosts.keys_for(known, "10.0.0.1")) == {"ssh-ed25519": first.split()[1]}
    stat = known.stat()
    # Rebuilt host, same length of line, same modification time: still seen (inode and ctime).
    second = public_line()
    replacement = tmp_path / "new"
    replacement.write_text(f"10.0.0.1 {second}\n")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(known)
    assert b64(_KnownHosts.keys_for(known, "10.0.0.1")) == {"ssh-ed25519": second.split()[1]}
    with known.open("a") as handle:  # --accept-new-host-keys appends a line
        handle.write(f"10.0.0.5 {first}\n")
    assert b64(_KnownHosts.keys_for(known, "10.0.0.5")) == {"ssh-ed25519": first.split()[1]}


def test_server_key_names_follow_openssh() -> None:
    assert _server_key_name("10.0.0.1", 22) == "10.0.0.1"
    assert _server_key_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"
