"""vpncmd transcripts (captured from real vpnserver/vpnbridge 5.01 build 9674) and batch rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridctl.core.softether.commands import RANDOM_SECRET, Step, plan_steps
from hybridctl.core.softether.parse import READ_TOLERATED, parse_read
from hybridctl.core.softether.vpncmd import (
    CANCEL,
    MAX_STDIN_BYTES,
    VpncmdAuthError,
    VpncmdError,
    check_transcript,
    parse_transcript,
    read_invocation,
    render_invocations,
    validate_password,
)
from tests.fixtures.softether.lab_configs import BRIDGE, SECRETS, SERVER


def fixture(fixtures_dir: Path, name: str) -> str:
    return (fixtures_dir / "softether" / name).read_bytes().decode()


def test_apply_transcript_splits_per_command(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "apply_server.txt"))
    assert not t.admin_password_asked  # fresh server: no admin password yet
    assert t.results[0].command == "ServerPasswordSet"
    assert all(r.ok for r in t.results)
    hubs = {r.command: r.hub for r in t.results}
    assert hubs["UserCreate alice /GROUP:none /REALNAME:none /NOTE:none"] == "DEFAULT"
    assert hubs["UserPasswordSet aws"] == "HYBRID"
    # Each password prompt is echoed with stars only: the transcript holds no secret.
    text = fixture(fixtures_dir, "apply_server.txt")
    assert not any(value in text for value in SECRETS.values())
    bridge_create = next(r for r in t.results if r.name == "bridgecreate")
    assert bridge_create.ok and any("promiscuous" in line.lower() for line in bridge_create.lines)


def test_error_transcript_codes(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "errors_server.txt"))
    assert t.admin_password_asked
    got = [(r.command.split(" ")[0], r.error_code, r.failed) for r in t.results]
    assert got == [
        ("HubCreate", 57, True),
        ("ListenerCreate", 54, True),
        ("Hub", 8, True),
        ("UserList", None, True),  # no hub selected after the failed Hub NOPE
        ("Hub", None, False),
        ("UserCreate", 66, True),
        ("UserDelete", 29, True),
        ("RouterIfAdd", 97, True),
        ("RouterIfAdd", None, True),  # invalid IP: vpncmd re-prompts, the prompt hits EOF
        ("NoSuchCommand", None, True),
        ("HubList", None, False),
    ]
    unselected = t.results[3]
    assert unselected.hub is None
    with pytest.raises(VpncmdError) as err:
        check_transcript(t, [r.command for r in t.results])
    assert err.value.command == "HubCreate HYBRID /PASSWORD:none" and err.value.code == 57
    assert "already exists" in str(err.value)


def test_check_transcript_tolerates_named_codes(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "cascade_status_offline.txt"))
    with pytest.raises(VpncmdError) as err:
        check_transcript(t, ())
    assert err.value.code == 61
    check_transcript(t, [r.command for r in t.results], tolerate={"CascadeStatusGet": [61]})


def test_bridge_edition_unsupported_and_cancelled_prompt(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "errors_bridge.txt"))
    codes = {r.command: (r.error_code, r.failed) for r in t.results}
    assert codes["UserList"] == (33, True)
    assert codes["RouterList"] == (33, True)
    # HubCreate without /PASSWORD prompts; our stdin had only Ctrl+D left: cancelled.
    assert codes["HubCreate X"] == (None, True)


def test_wrong_password_is_an_auth_error(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "wrong_password.txt"))
    assert t.access_denied and not t.results
    with pytest.raises(VpncmdAuthError):
        check_transcript(t, ["HubList"])


def test_missing_commands_are_reported(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "read_server_fresh.txt"))
    with pytest.raises(VpncmdError) as err:
        check_transcript(t, ["ServerInfoGet", "ListenerList", "NeverRan"], tolerate=READ_TOLERATED,
                         tolerate_unselected=True)
    assert err.value.command == "NeverRan"


def test_connect_prompt_mismatch_is_refused(fixtures_dir: Path) -> None:
    t = parse_transcript(fixture(fixtures_dir, "apply_server.txt"))
    with pytest.raises(Exception, match="admin password"):
        check_transcript(t, (), expected_connect_prompt=True)


def test_read_invocation_keeps_password_off_the_batch() -> None:
    inv = read_invocation(("HubList",), "S3cret pw")
    assert "S3cret" not in inv.batch and "S3cret" not in inv.shell_script()
    assert "S3cret" not in repr(inv)
    assert inv.answers == b"S3cret pw\n" + CANCEL
    assert inv.wire_stdin() == b"HubList\n" + inv.answers
    assert f"head -c {len(inv.batch)} " in inv.shell_script()
    assert inv.argv("/x/in") == ["/usr/bin/vpncmd", "localhost:5555", "/SERVER", "/CSV", "/IN:/x/in"]


def test_render_fresh_server_plan_reproduces_captured_batch(fixtures_dir: Path) -> None:
    fresh = parse_read(fixture(fixtures_dir, "read_server_fresh.txt"), "vpn-server")
    plan = plan_steps(SERVER, fresh.config, admin_password_set=fresh.facts.admin_password_set)
    (inv,) = render_invocations(
        plan.before_network, SECRETS, admin_secret=SERVER.admin_password_secret, admin_password_set=False
    )
    captured = parse_transcript(fixture(fixtures_dir, "apply_server.txt"))
    assert list(inv.commands) == [r.command for r in captured.results]
    assert inv.admin_prompt_expected is False
    for value in SECRETS.values():
        assert value not in inv.batch and value not in inv.shell_script()
    answers = inv.answers.split(b"\n")
    admin = SECRETS["softether/server-admin"].encode()
    # ServerPasswordSet asks twice, then HubCreate (random, twice), then each user twice.
    assert answers[:2] == [admin, admin]
    assert answers[2] == answers[3] and answers[2] not in (admin,)
    assert answers[4:6] == [SECRETS["hub/DEFAULT/alice"].encode()] * 2
    assert answers[-1] == CANCEL


def test_render_selects_hubs_and_unselects_before_switching() -> None:
    steps = (
        Step("ListenerCreate 1"),
        Step("UserDelete a", "H1"),
        Step("UserDelete b", "H1"),
        Step("UserDelete c", "H2"),
        Step("ListenerDelete 2"),
    )
    (inv,) = render_invocations(steps, SECRETS, admin_secret="softether/server-admin", admin_password_set=True)
    assert inv.commands == (
        "ListenerCreate 1",
        "Hub H1",
        "UserDelete a",
        "UserDelete b",
        "Hub",
        "Hub H2",
        "UserDelete c",
        "Hub",
        "ListenerDelete 2",
    )
    assert inv.answers == SECRETS["softether/server-admin"].encode() + b"\n" + CANCEL
    assert inv.admin_prompt_expected is True


def test_render_splits_large_answer_sets_and_tracks_admin_password() -> None:
    secrets = dict(SECRETS, **{f"u{i}": "p" * 60 for i in range(40)})
    steps = [Step("ServerPasswordSet", None, "softether/server-admin", 2)]
    steps += [Step(f"UserPasswordSet u{i}", "H", f"u{i}", 2) for i in range(40)]
    invs = render_invocations(steps, secrets, admin_secret="softether/server-admin", admin_password_set=False)
    assert len(invs) > 1
    assert all(len(i.answers) <= MAX_STDIN_BYTES for i in invs)
    assert invs[0].admin_prompt_expected is False and invs[1].admin_prompt_expected is True
    # A later batch connects with the password set by the first, and selects its hub again.
    admin = SECRETS["softether/server-admin"].encode()
    assert invs[1].answers.startswith(admin + b"\n")
    assert invs[1].commands[0] == "Hub H"
    rendered = [c for i in invs for c in i.commands if c.startswith("UserPasswordSet")]
    assert rendered == [f"UserPasswordSet u{i}" for i in range(40)]


def test_render_refuses_what_vpncmd_cannot_type() -> None:
    with pytest.raises(ValueError, match="cannot type"):
        validate_password("x", "pässword")
    with pytest.raises(ValueError, match="longer"):
        validate_password("x", "a" * 64)
    validate_password("x", "a" * 63)
    with pytest.raises(ValueError, match="not resolved"):
        render_invocations([Step("UserPasswordSet a", "H", "missing", 2)], SECRETS,
                           admin_secret="softether/server-admin", admin_password_set=True)
    with pytest.raises(ValueError, match="vpncmd step"):
        render_invocations([Step("restart", kind="restart")], SECRETS,
                           admin_secret="softether/server-admin", admin_password_set=True)


def test_random_hub_password_is_fresh_each_time() -> None:
    step = Step("HubCreate X", None, RANDOM_SECRET, 2)
    a = render_invocations([step], SECRETS, admin_secret="softether/server-admin", admin_password_set=True)[0]
    b = render_invocations([step], SECRETS, admin_secret="softether/server-admin", admin_password_set=True)[0]
    pa, pb = a.answers.split(b"\n")[1], b.answers.split(b"\n")[1]
    assert pa != pb and len(pa) >= 20
    assert a.answers.split(b"\n")[1] == a.answers.split(b"\n")[2]


def test_bridge_plan_renders_in_two_phases(fixtures_dir: Path) -> None:
    fresh = parse_read(fixture(fixtures_dir, "read_bridge_fresh.txt"), "vpn-bridge")
    plan = plan_steps(BRIDGE, fresh.config, admin_password_set=False)
    (inv,) = render_invocations(plan.before_network, SECRETS, admin_secret=BRIDGE.admin_password_secret,
                                admin_password_set=False)
    captured = parse_transcript(fixture(fixtures_dir, "apply_bridge.txt"))
    assert list(inv.commands) == [r.command for r in captured.results]
    assert all(r.ok for r in captured.results)
