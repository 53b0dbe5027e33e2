"""storage layer: directory pools and disk-image volumes on qemu-img.

    qemuimg    QemuImg (create/info/convert/resize/check/snapshots) behind the Runner seam
    paths      volume_path: a volume's file, never outside its pool
    pools      build/check/stats/refresh/delete of dir pools, the `default` pool
    volumes    create (model or vol-create-as), clone, import, delete, resize, describe
    transfer   upload/download (offset, length) and wipe
    display    pool-list, pool-info, vol-list, vol-info text in virsh's layout

Knows nothing of pool state (active, autostart) or of domains: callers pass what they know
(`in_use_by`, known formats). Imports only vmkit.model and vmkit.errors.
"""

from vmkit.storage.display import (
    PoolRow,
    format_pool_info,
    format_pool_list,
    format_vol_info,
    format_vol_list,
)
from vmkit.storage.paths import DEFAULT_POOL_NAME, volume_path
from vmkit.storage.pools import (
    PoolStats,
    RefreshResult,
    activate_pool,
    build_pool,
    check_pool_target,
    deactivate_pool,
    default_pool,
    delete_pool,
    pool_stats,
    refresh_pool,
    with_stats,
)
from vmkit.storage.qemuimg import QemuImg
from vmkit.storage.transfer import download_volume, upload_volume, wipe_volume
from vmkit.storage.volumes import (
    backing_users,
    clone_volume,
    create_volume,
    create_volume_as,
    delete_volume,
    describe_volume,
    import_image,
    resize_volume,
)

__all__ = [
    "DEFAULT_POOL_NAME",
    "PoolRow",
    "PoolStats",
    "QemuImg",
    "RefreshResult",
    "activate_pool",
    "backing_users",
    "build_pool",
    "check_pool_target",
    "clone_volume",
    "create_volume",
    "create_volume_as",
    "deactivate_pool",
    "default_pool",
    "delete_pool",
    "delete_volume",
    "describe_volume",
    "download_volume",
    "format_pool_info",
    "format_pool_list",
    "format_vol_info",
    "format_vol_list",
    "import_image",
    "pool_stats",
    "refresh_pool",
    "resize_volume",
    "upload_volume",
    "volume_path",
    "wipe_volume",
    "with_stats",
]
