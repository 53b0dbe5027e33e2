"""Why a QEMU stopped, read from its log (`-D qemu.log -trace ...`), as libvirt's reasons."""

from __future__ import annotations

import pytest

from vmkit.engine import states

GUEST_OFF = "qemu_system_shutdown_request reason=6\n"
RESET = "qmp_enter_system_reset {}\n"
SIGTERM = "qemu-system-x86_64: terminating on signal 15 from pid 4242 (/usr/bin/python3)\n"


RUN = "runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n"
TO_SHUTDOWN = "runstate_set current_run_state 9 (running) new_state 11 (shutdown)\n"
SHUTDOWN_TO_RUN = "runstate_set current_run_state 11 (shutdown) new_state 9 (running)\n"


@pytest.mark.parametrize(
    ("log", "cause", "reason"),
    [
        ("", None, states.CRASHED),  # SIGKILL, abort: nothing written
        (GUEST_OFF, "guest-shutdown", states.SHUTDOWN),
        ("qemu_system_shutdown_request reason=7\n", "guest-reset", states.SHUTDOWN),
        ("qemu_system_shutdown_request reason=2\n", "host-qmp-quit", states.DESTROYED),
        ("qemu_system_shutdown_request reason=8\n", "guest-panic", states.CRASHED),
        ("qemu_system_shutdown_request reason=42\n", "42", states.CRASHED),
        (SIGTERM, "host-signal", states.DESTROYED),  # a signal is not traced
        ("qemu-system-x86_64: terminating on signal 2\n", "host-signal", states.DESTROYED),
        # `reboot`: the guest powered off for it, then a QMP reset; a later kill -9 is a crash
        (GUEST_OFF + RESET, None, states.CRASHED),
        (GUEST_OFF + RESET + GUEST_OFF, "guest-shutdown", states.SHUTDOWN),
        (GUEST_OFF + RESET + SIGTERM, "host-signal", states.DESTROYED),
        (
            "warning: host doesn't support requested feature\n" + GUEST_OFF,
            "guest-shutdown",
            "shutdown",
        ),
        # QEMU 7.2 with -no-reboot: a guest reset traces no request, only the run state
        (RUN + TO_SHUTDOWN, "guest-reset", states.SHUTDOWN),
        (RUN + GUEST_OFF + TO_SHUTDOWN, "guest-shutdown", states.SHUTDOWN),
        # on_poweroff=preserve, then `reboot` (reset + cont), then kill -9: a crash
        (RUN + GUEST_OFF + TO_SHUTDOWN + RESET + SHUTDOWN_TO_RUN, None, states.CRASHED),
    ],
    ids=[
        "nothing",
        "guest-poweroff",
        "guest-reset-no-reboot",
        "qmp-quit",
        "guest-panic",
        "unknown-number",
        "sigterm",
        "sigint",
        "reboot-then-killed",
        "reboot-then-poweroff",
        "reboot-then-sigterm",
        "other-lines",
        "no-reboot-reset",
        "poweroff-then-stopped",
        "preserved-rebooted-killed",
    ],
)
def test_shutoff_reason_from_log(log: str, cause: str | None, reason: str) -> None:
    assert states.last_shutdown_cause(log) == cause
    assert states.shutoff_reason(cause) == reason


def test_launch_traces_what_the_parser_reads() -> None:
    assert states.TRACE_EVENT in states.TRACE_EVENTS
    assert states.RESET_TRACE_EVENT in states.TRACE_EVENTS
    assert states.RUNSTATE_TRACE_EVENT in states.TRACE_EVENTS
