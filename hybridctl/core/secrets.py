"""Secrets: references in the inventory, values only at apply time.

A secret spec is ``generate`` (created once and kept in a 0600 JSON store), ``env:VAR`` or
``file:/path``. Plans and logs only ever see :class:`SecretRef` (a name and where it comes
from). The store lives in the state directory (``HYBRIDCTL_STATE_DIR``, default
``~/.local/state/hybridctl``) under the inventory's name.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from hybridctl.core.errors import InputError, Problem


@dataclass(frozen=True, order=True)
class SecretRef:
    """A named secret and where its value comes from; safe to print."""

    name: str
    spec: str = "generate"

    def __str__(self) -> str:
        return f"<secret {self.name} from {self.spec}>"


def state_dir() -> Path:
    configured = os.environ.get("HYBRIDCTL_STATE_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".local" / "state" / "hybridctl"


def check_resolvable(spec: str) -> str | None:
    """Why a non-generated secret cannot be read now, or None. Reads nothing but metadata."""
    if spec.startswith("env:"):
        if not os.environ.get(spec[4:]):
            return f"environment variable {spec[4:]} is not set or empty"
    elif spec.startswith("file:"):
        path = Path(spec[5:]).expanduser()
        if not path.is_file():
            return f"secret file {path} does not exist"
    return None


def resolve_external(ref: SecretRef) -> str:
    """The value of an ``env:`` or ``file:`` secret (no store involved)."""
    if ref.spec.startswith("env:"):
        value = os.environ.get(ref.spec[4:])
        if not value:
            raise InputError([Problem("(environment)", ref.name, f"{ref.spec[4:]} is not set", "export it")])
        return value
    if ref.spec.startswith("file:"):
        path = Path(ref.spec[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError:
            raise InputError([Problem(str(path), ref.name, "cannot read secret file", "create it")]) from None
    raise ValueError(f"{ref.name}: {ref.spec!r} is not an env: or file: secret")


class SecretStore:
    """Resolves SecretRefs; generated values persist in a 0600 file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cache: dict[str, str] | None = None

    @classmethod
    def for_inventory(cls, inventory_name: str, override: str | None = None) -> SecretStore:
        if override:
            return cls(Path(override).expanduser())
        return cls(state_dir() / inventory_name / "secrets.json")

    def _load(self) -> dict[str, str]:
        if self._cache is None:
            if self.path.exists():
                mode = stat.S_IMODE(self.path.stat().st_mode)
                if mode & 0o077:
                    raise InputError(
                        [
                            Problem(
                                str(self.path),
                                "(permissions)",
                                f"secrets store is readable by others (mode {mode:o})",
                                f"chmod 600 {self.path}",
                            )
                        ]
                    )
                self._cache = json.loads(self.path.read_text(encoding="utf-8"))
            else:
                self._cache = {}
        return self._cache

    def _save(self, values: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(values, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def resolve(self, ref: SecretRef) -> str:
        """The secret's value. Generated secrets are created on first use and kept."""
        if ref.spec.startswith(("env:", "file:")):
            return resolve_external(ref)
        with self._lock:
            values = self._load()
            if ref.name not in values:
                # Letters and digits only: SoftEther and shells never need quoting for it.
                alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
                values[ref.name] = "".join(pysecrets.choice(alphabet) for _ in range(24))
                self._save(values)
            return values[ref.name]

    def known(self, ref: SecretRef) -> bool:
        """Whether resolving would not create anything new."""
        if ref.spec != "generate":
            return check_resolvable(ref.spec) is None
        with self._lock:
            return ref.name in self._load()
