"""Supported distributions (adapters/distros.py), on real /etc/os-release files of each release."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from hybridctl.backends import distros
from hybridctl.backends.base import Outcome, Progress, ReadResult
from hybridctl.backends.calls import CallCounter
from hybridctl.backends.hostscript import ReadRequest, parse_read, render_read
from hybridctl.core.diff import Change
from hybridctl.core.errors import ExitStatus, UnsupportedTargets
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.desired import DesiredState, Resource
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.features.engine import Options, open_context, prepare
from tests.conftest import FIXTURES

OS_RELEASE = FIXTURES / "os-release"
REPO = Path(__file__).resolve().parents[2]


def os_release(name: str) -> dict[str, str]:
    return distros.parse_os_release((OS_RELEASE / name).read_text())


@pytest.mark.parametrize(
    ("fixture", "label"),
    [
        ("debian-12", "Debian 12 (bookworm)"),
        ("debian-13", "Debian 13 (trixie)"),
        ("ubuntu-22.04", "Ubuntu 22.04 LTS (jammy)"),
        ("ubuntu-24.04", "Ubuntu 24.04 LTS (noble)"),
    ],
)
def test_supported_releases(fixture: str, label: str) -> None:
    verdict = distros.check(os_release(fixture))
    assert verdict.ok and verdict.error == ""
    assert verdict.distribution is not None and verdict.distribution.label == label


@pytest.mark.parametrize(
    ("fixture", "named"),
    [
        ("centos-7", "CentOS Linux 7 (Core)"),
        ("alpine-3.19", "Alpine Linux v3.19"),
        ("debian-11", "Debian GNU/Linux 11 (bullseye)"),
        ("debian-sid", "Debian GNU/Linux trixie/sid"),
    ],
)
def test_other_releases_are_refused_by_name(fixture: str, named: str) -> None:
    verdict = distros.check(os_release(fixture))
    assert not verdict.ok
    assert verdict.error.startswith(f"{named} is not a supported distribution")
    assert "Debian 12 (bookworm)" in verdict.error and "Ubuntu 24.04 LTS (noble)" in verdict.error


def test_parse_os_release_quotes_and_blank_lines() -> None:
    parsed = os_release("centos-7")
    assert parsed["ID"] == "centos" and parsed["ID_LIKE"] == "rhel fedora" and parsed["VERSION_ID"] == "7"
    assert os_release("alpine-3.19")["VERSION_ID"] == "3.19.1"
    assert not distros.check({}).ok and "no /etc/os-release" in distros.check({}).error


def test_the_one_read_script_prints_os_release_and_the_parser_keeps_it() -> None:
    wire = render_read(ReadRequest(paths=()))
    assert "hctl_mark os\nhctl_cat /etc/os-release || hctl_cat /usr/lib/os-release" in wire.script
    body = (OS_RELEASE / "ubuntu-24.04").read_text()
    text = f"\n@@hybridctl:os@@\n{body}\n@@hybridctl:pkg@@\n@@hybridctl:end@@\n"
    raw = parse_read(text)
    assert distros.parse_os_release(raw.os_release)["VERSION_CODENAME"] == "noble"


class _ReadOnly:
    """A backend that reads a fixed state: one host on an unsupported distribution."""

    name = "hosts"

    def __init__(self, desired: DesiredState) -> None:
        self.counter = CallCounter()
        self.applied: list[Change] = []
        self.desired = desired

    def owns(self, resource_layer: str, key: tuple[str, ...]) -> bool:
        return True

    def read(self, desired: DesiredState) -> ReadResult:
        why = distros.check(os_release("centos-7")).error
        return ReadResult(resources=[], blocking={"aws-bridge": why})

    def apply(self, changes: Sequence[Change], desired: DesiredState, progress: Progress) -> list[Outcome]:
        self.applied.extend(changes)
        return []

    def close(self) -> None:
        return None


def test_an_unsupported_host_means_nothing_is_planned_anywhere() -> None:
    loaded = load_inventory(REPO / "inventory" / "reference.yaml")
    desired = plan_loaded(loaded)
    wanted: list[Resource] = desired.resources()
    assert wanted  # there would be plenty to do
    context = open_context(loaded, desired, Options(), factories=[_ReadOnly])
    with pytest.raises(UnsupportedTargets) as error:
        prepare(context)
    text = str(error.value)
    assert text.startswith("aws-bridge: CentOS Linux 7 (Core) is not a supported distribution")
    assert "nothing was changed on any host" in text
    assert error.value.status is ExitStatus.ERROR
