"""Host facts as engine operations: version, nodeinfo, capabilities, host-validate."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

from vmkit import __version__
from vmkit.engine.context import Context
from vmkit.host import report


def _cache(ctx: Context) -> Any:
    ctx.paths.ensure()
    return report.host_cache_file(ctx.paths.cache_dir)


def version(ctx: Context) -> str:
    return report.version_text(__version__, _cache(ctx))


def nodeinfo(ctx: Context) -> str:
    return report.nodeinfo_text()


def nodeinfo_data(ctx: Context) -> dict[str, Any]:
    from vmkit.host.nodeinfo import read_nodeinfo

    return asdict(read_nodeinfo())


def capabilities(ctx: Context) -> str:
    return report.capabilities_xml(_cache(ctx))


def host_validate(ctx: Context) -> tuple[str, bool]:
    return report.host_validate_text(_cache(ctx), color=sys.stdout.isatty())


def host_checks(ctx: Context) -> list[dict[str, Any]]:
    return [asdict(c) for c in report.host_checks(_cache(ctx))]
