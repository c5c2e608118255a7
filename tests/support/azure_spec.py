"""Azure REST specs (swagger 2.0) -> JSON Schema, and a check for properties a spec does not declare.

The conformance test validates what the ARM emulator returns against the definitions of the
published specs (tests/fixtures/azure-specs/). Swagger 2.0 definitions are almost JSON Schema
draft 4; what differs and how this module treats it:

- ``$ref`` may point into another file (``./network.json#/definitions/SubResource``). Every
  definition becomes one entry of the output's ``definitions``, keyed ``file:Name``, so cycles
  (Subnet -> RouteTable -> Subnet) stay references.
- A ``$ref`` to a definition the vendored excerpt does not include (a file or a definition we
  did not copy, such as ``publicIpAddress.json#/definitions/PublicIPAddress``) becomes an open
  object and is listed in :attr:`SpecSet.opaque`, so a test can see exactly where checking stops.
- ``allOf`` is merged into the definition (properties, required): that is how the specs express
  "Resource plus these properties", and the merged form lets :func:`undeclared` see every
  declared name in one place. Discriminated ``allOf`` hierarchies are not used by these specs.
- ``x-ms-client-flatten`` only changes the generated SDK classes, never the wire format, so
  ``properties`` stays a nested object. ``readOnly``, ``x-ms-azure-resource``, ``x-ms-enum``,
  ``x-ms-*`` and ``default`` are annotations for a response.
- ``x-nullable: true`` allows ``null``.
- A ``$ref`` with siblings uses only the reference, as swagger 2.0 says.
- ``enum`` is enforced even where ``x-ms-enum.modelAsString`` is true: such an enum is
  extensible for clients, but an emulator that answers a value the spec does not list has
  drifted from the api-version it claims to serve.
- ``additionalProperties`` is left as the spec has it (mostly absent, so objects are open);
  :func:`undeclared` is the separate, strict check for emulator-invented fields.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

SPECS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "azure-specs"
NETWORK_DIR = SPECS_DIR / "network" / "2024-05-01"
CONSUMPTION_DIR = SPECS_DIR / "consumption" / "2024-08-01"

# Keys that describe, and never constrain, a response.
_ANNOTATIONS = {"description", "title", "readOnly", "default", "example", "externalDocs", "x-nullable"}
_OPAQUE: dict[str, Any] = {"type": "object", "x-opaque": True}


def _key(file: str, name: str) -> str:
    return f"{file}:{name}"


@dataclass
class SpecSet:
    """Swagger documents of one folder, turned into one draft-4 schema document."""

    directory: Path
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    opaque: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, directory: Path) -> SpecSet:
        specs = cls(directory)
        for path in sorted(directory.glob("*.json")):
            specs.documents[path.name] = json.loads(path.read_text())
        for file, document in specs.documents.items():
            for name in document.get("definitions", {}):
                specs._definition(file, name)
        return specs

    # -- conversion ---------------------------------------------------------------------------

    def _target(self, ref: str, file: str) -> tuple[str, str]:
        """(file, definition name) a ``$ref`` written in ``file`` points to."""
        target_file, _, pointer = ref.partition("#")
        target_file = Path(target_file).name if target_file else file
        prefix = "/definitions/"
        if not pointer.startswith(prefix) or "/" in pointer[len(prefix):]:
            raise ValueError(f"{file}: unsupported $ref {ref!r} (only #/definitions/Name is used by these specs)")
        return target_file, pointer[len(prefix):]

    def _ref(self, ref: str, file: str) -> dict[str, Any]:
        target_file, name = self._target(ref, file)
        if name not in self.documents.get(target_file, {}).get("definitions", {}):
            self.opaque.add(f"{target_file}#/definitions/{name}")
            return dict(_OPAQUE)
        self._definition(target_file, name)
        return {"$ref": f"#/definitions/{_key(target_file, name)}"}

    def _definition(self, file: str, name: str) -> None:
        key = _key(file, name)
        if key in self.definitions:
            return
        self.definitions[key] = {}  # placeholder: a cycle back here sees a reference, not a loop
        raw = self.documents[file]["definitions"][name]
        self.definitions[key] = self._merge_all_of(raw, file)

    def _merge_all_of(self, raw: dict[str, Any], file: str) -> dict[str, Any]:
        own = self._schema({k: v for k, v in raw.items() if k != "allOf"}, file)
        if "allOf" not in raw:
            return own
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in raw["allOf"]:
            base = self._resolved(self._schema(part, file))
            merged["properties"].update(base.get("properties", {}))
            merged["required"] += base.get("required", [])
        merged["properties"].update(own.get("properties", {}))
        merged["required"] += own.get("required", [])
        for k, v in own.items():
            if k not in ("properties", "required", "type"):
                merged[k] = v
        if not merged["required"]:
            del merged["required"]
        return merged

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The definition a ``{"$ref": ...}`` names (fully built), or the schema itself."""
        ref = schema.get("$ref")
        if ref is None:
            return schema
        return self.definitions[ref.removeprefix("#/definitions/")]

    def _schema(self, raw: dict[str, Any], file: str) -> dict[str, Any]:
        if "$ref" in raw:
            target = self._ref(raw["$ref"], file)
            return {"anyOf": [target, {"type": "null"}]} if raw.get("x-nullable") else target
        if "allOf" in raw:
            return self._merge_all_of(raw, file)
        out: dict[str, Any] = {}
        for k, v in raw.items():
            if k in _ANNOTATIONS or k.startswith("x-") or k == "discriminator":
                continue
            if k == "properties":
                out[k] = {name: self._schema(prop, file) for name, prop in v.items()}
            elif k in ("items", "additionalProperties") and isinstance(v, dict):
                out[k] = self._schema(v, file)
            elif k == "format" and v not in ("date-time",):
                continue  # int32, decimal, arm-id, uuid: no draft-4 meaning, nothing to check
            else:
                out[k] = copy.deepcopy(v)
        if "properties" in out and "type" not in out:
            out["type"] = "object"
        if raw.get("x-nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out

    # -- use -------------------------------------------------------------------------------------

    def schema_for(self, file: str, name: str) -> dict[str, Any]:
        """A self-contained draft-4 schema for one definition of ``file``."""
        if name not in self.documents.get(file, {}).get("definitions", {}):
            raise KeyError(f"{self.directory.name}/{file} has no definition {name!r}")
        return {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "$ref": f"#/definitions/{_key(file, name)}",
            "definitions": self.definitions,
        }

    def errors(self, file: str, name: str, instance: Any) -> list[str]:
        """Every schema violation of ``instance`` against the definition, as 'path: message'."""
        validator = jsonschema.Draft4Validator(self.schema_for(file, name), format_checker=FORMATS)
        return sorted(
            f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in validator.iter_errors(instance)
        )

    def undeclared(self, file: str, name: str, instance: Any) -> list[str]:
        """Paths of properties in ``instance`` that the definition (recursively) does not declare."""
        return sorted(self._undeclared(self._resolved({"$ref": f"#/definitions/{_key(file, name)}"}), instance, ""))

    def _undeclared(self, schema: dict[str, Any], instance: Any, path: str) -> Iterator[str]:
        schema = self._resolved(schema)
        if schema.get("x-opaque"):
            return
        for branch in schema.get("anyOf", []):
            if instance is not None and branch.get("type") != "null":
                yield from self._undeclared(branch, instance, path)
        if isinstance(instance, dict):
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, value in instance.items():
                where = f"{path}/{key}"
                if props is not None and key in props:
                    yield from self._undeclared(props[key], value, where)
                elif isinstance(extra, dict):
                    yield from self._undeclared(extra, value, where)
                elif props is not None:
                    yield where
        elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
            for index, value in enumerate(instance):
                yield from self._undeclared(schema["items"], value, f"{path}/{index}")


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339 as ARM writes it ("2026-12-01T00:00:00Z"); fromisoformat needs the Z spelled out.
    if not isinstance(value, str):
        return True
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return True


def conformance_problems(specs: SpecSet, file: str, name: str, instance: Any) -> list[str]:
    """Schema errors and undeclared properties together, each line saying which check found it."""
    return [f"schema {e}" for e in specs.errors(file, name, instance)] + [
        f"undeclared {p}" for p in specs.undeclared(file, name, instance)
    ]
