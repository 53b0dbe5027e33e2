"""`<clock>` -> `-rtc` and the timer policies QEMU takes at start-up.

offset utc/localtime -> `-rtc base=`; offset variable -> the basis, or with an adjustment the
date and time the RTC starts at (`ArgvOptions.now` plus the adjustment, in UTC or the host's
local time, as libvirt computes it at each start); rtc tickpolicy
catchup -> `driftfix=slew`, track guest/wall/realtime -> `clock=vm/host/rt`; pit tickpolicy ->
`-global kvm-pit.lost_tick_policy=` on kvm only (the TCG PIT has no such policy, so nothing is
lost there). Presence of hpet/pit/rtc is a machine property and kvmclock a CPU flag: see
argv.py. Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vmkit.errors import InvalidConfig
from vmkit.model.domain import Timer
from vmkit.qemu.argv_context import Ctx, render_opts

_RTC_CLOCK = {"guest": "vm", "wall": "host", "realtime": "rt"}
_PIT_POLICY = {"delay": "delay", "catchup": "slew", "discard": "discard"}
_KNOWN = {"rtc", "pit", "hpet", "kvmclock", "tsc", "hypervclock"}


def clock_args(ctx: Ctx) -> list[str]:
    clock = ctx.dom.clock
    rtc: dict[str, str | None] = {"base": _rtc_base(ctx)}
    args: list[str] = []
    for i, timer in enumerate(clock.timers if clock else [], start=1):
        xpath = f"/domain/clock/timer[{i}]"
        _check_timer(timer, xpath)
        if timer.name == "rtc":
            rtc.update(_rtc_props(timer, xpath))
        elif timer.name == "pit" and timer.tickpolicy is not None:
            policy = _PIT_POLICY.get(timer.tickpolicy)
            if policy is None:
                raise InvalidConfig(
                    f"pit tickpolicy '{timer.tickpolicy}' is not supported",
                    xpath=xpath + "/@tickpolicy",
                    value=timer.tickpolicy,
                )
            if ctx.opts.accel == "kvm":
                args += ["-global", f"kvm-pit.lost_tick_policy={policy}"]
    return ["-rtc", render_opts(None, rtc), *args]


def _rtc_base(ctx: Ctx) -> str:
    clock = ctx.dom.clock
    if clock is None or clock.offset == "utc":
        return "utc"
    if clock.offset == "localtime":
        return "localtime"
    if clock.offset == "variable":
        basis = clock.basis or "utc"
        if basis not in ("utc", "localtime"):
            raise InvalidConfig(
                f"clock basis '{basis}' is not supported (utc, localtime)",
                xpath="/domain/clock/@basis",
                value=basis,
            )
        if not clock.adjustment:
            return basis
        now = ctx.opts.now or datetime.now(UTC)
        start = (now if now.tzinfo else now.replace(tzinfo=UTC)) + timedelta(
            seconds=clock.adjustment
        )
        if basis == "localtime":
            start = start.astimezone()  # the host's local time, as libvirt
        return start.strftime("%Y-%m-%dT%H:%M:%S")
    raise InvalidConfig(
        f"clock offset '{clock.offset}' is not supported (utc, localtime, variable)",
        xpath="/domain/clock/@offset",
        value=clock.offset,
    )


def _rtc_props(timer: Timer, xpath: str) -> dict[str, str | None]:
    props: dict[str, str | None] = {}
    if timer.track is not None:
        clock = _RTC_CLOCK.get(timer.track)
        if clock is None:
            raise InvalidConfig(
                f"rtc track '{timer.track}' is not supported (guest, wall, realtime)",
                xpath=xpath + "/@track",
                value=timer.track,
            )
        props["clock"] = clock
    if timer.tickpolicy == "catchup":
        props["driftfix"] = "slew"
    elif timer.tickpolicy not in (None, "delay"):
        raise InvalidConfig(
            f"rtc tickpolicy '{timer.tickpolicy}' is not supported (delay, catchup)",
            xpath=xpath + "/@tickpolicy",
            value=timer.tickpolicy,
        )
    return props


def _check_timer(timer: Timer, xpath: str) -> None:
    if timer.name not in _KNOWN:
        raise InvalidConfig(
            f"timer '{timer.name}' is not supported", xpath=xpath + "/@name", value=timer.name
        )
    if timer.track is not None and timer.name != "rtc":
        raise InvalidConfig(
            f"track is only supported for the rtc timer, not '{timer.name}'",
            xpath=xpath + "/@track",
            value=timer.track,
        )
    if timer.tickpolicy is not None and timer.name not in ("rtc", "pit"):
        raise InvalidConfig(
            f"tickpolicy is only supported for the rtc and pit timers, not '{timer.name}'",
            xpath=xpath + "/@tickpolicy",
            value=timer.tickpolicy,
        )
    if timer.name == "tsc" and timer.present is False:
        raise InvalidConfig("the TSC cannot be removed", xpath=xpath + "/@present", value="no")
    if timer.name == "hypervclock" and timer.present:
        raise InvalidConfig(
            "hypervclock (Hyper-V enlightenments) is not supported",
            xpath=xpath + "/@present",
            value="yes",
        )
