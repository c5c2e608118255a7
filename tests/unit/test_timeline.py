"""The per-host timeline: host scripts time their own steps, the backend places them, render shows them.

The scripts are run for real with the local ``sh`` (the same bootstrap an SSH exec runs), on
harmless steps, so the ``t:`` markers parsed here are what a host prints.
"""

from __future__ import annotations

import io
import subprocess

from rich.console import Console

from hybridctl.backends.hostscript import ApplyScript, ReadRequest, Wire, parse_apply, parse_read, render_read
from hybridctl.backends.timeline import Span, Timeline, host_totals
from hybridctl.render.timeline import render_timeline, timeline_document


def run_bootstrap(wire: Wire) -> str:
    proc = subprocess.run(wire.command, shell=True, input=wire.stdin, capture_output=True, check=False, timeout=30)
    return proc.stdout.decode()


def test_apply_steps_are_timed_by_the_host() -> None:
    script = ApplyScript()
    script.add("quick", "files", "true\n")
    script.add("slow", "service", "sleep 0.3\n")
    script.add("after", "network", "true\n")
    result = parse_apply(run_bootstrap(script.render()))
    assert result.finished and result.completed == ("quick", "slow", "after")
    names = [name for name, _, _ in result.times]
    assert names == ["quick", "slow", "after"]
    took = {name: end - start for name, start, end in result.times}
    # The host's clock is /proc/uptime: 10 ms steps.
    assert took["slow"] >= 0.3 - 0.011 and took["slow"] > took["quick"]
    assert result.started is not None and result.started <= result.times[0][1]
    # Consecutive: each step starts where the previous one ended.
    assert result.times[1][1] == result.times[0][2] and result.times[2][1] == result.times[1][2]


def test_a_failed_step_is_timed_too() -> None:
    script = ApplyScript()
    script.add("ok", "files", "true\n")
    script.add("broken", "service", "sleep 0.1; exit 3\n")
    script.add("never", "network", "true\n")
    result = parse_apply(run_bootstrap(script.render()))
    assert result.failed == "broken" and result.rc == 3
    assert [name for name, _, _ in result.times] == ["ok", "broken"]


def test_outputs_stay_with_their_step_between_clock_marks() -> None:
    script = ApplyScript()
    script.add("talk", "files", "echo hello\n")
    script.add("fail", "service", "echo bad thing; exit 1\n")
    result = parse_apply(run_bootstrap(script.render()))
    assert result.outputs["talk"].strip() == "hello"
    assert result.outputs["fail"].strip() == "bad thing"


def test_read_script_reports_its_clock() -> None:
    raw = parse_read(run_bootstrap(render_read(ReadRequest(paths=("/etc/hostname",)))))
    assert raw.clock is not None and raw.clock[1] >= raw.clock[0]
    assert raw.vpncmd_clock is None  # no SoftEther asked for


def test_remote_steps_are_placed_from_the_exec_start() -> None:
    ticks = iter([100.0, 100.5])
    timeline = Timeline(clock=lambda: next(ticks))
    start = timeline.now()  # 0.5 s after the timeline's start
    timeline.add_remote(
        "aws-bridge", "apply", start, 5000.0,
        [("files", 5000.1, 5000.3), ("vpncmd-1", 5000.3, 5001.0)],
        {"vpncmd-1": "3 commands: BridgeCreate CascadeCreate Flush"},
    )  # fmt: skip
    spans = timeline.spans()
    assert [(s.step, round(s.start_s, 3), round(s.seconds, 3)) for s in spans] == [
        ("files", 0.6, 0.2),
        ("vpncmd-1", 0.8, 0.7),
    ]
    assert spans[1].detail.startswith("3 commands")
    assert host_totals(spans) == {"aws-bridge": spans[1].end_s}


def test_render_lists_every_host_and_the_last_one_done() -> None:
    spans = [
        Span("vpnserver", "connect", "connect", 0.0, 0.2),
        Span("vpnserver", "apply", "vpncmd-1", 0.5, 1.5, "20 commands: HubCreate"),
        Span("aws-bridge", "connect", "connect", 0.0, 0.25),
        Span("aws-bridge", "apply", "wait-server", 1.0, 1.0),
        Span("aws-bridge", "verify", "read", 3.0, 0.5),
    ]
    buffer = io.StringIO()
    render_timeline(Console(file=buffer, width=200, color_system=None), spans)
    text = buffer.getvalue()
    assert "wait-server" in text and "20 commands: HubCreate" in text
    assert "last host done: aws-bridge at 3.50 s" in text
    assert text.index("vpnserver") < text.index("aws-bridge")  # done first, listed first
    document = timeline_document(spans)
    assert document[0] == {  # by start, then host
        "host": "aws-bridge", "phase": "connect", "step": "connect", "start_s": 0.0, "seconds": 0.25, "detail": "",
    }  # fmt: skip
    assert len(document) == len(spans)
