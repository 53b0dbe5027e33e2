"""storage layer: pools (dir; fs: mounted file systems) and disk-image volumes on qemu-img.

    qemuimg    QemuImg (create/info/convert/resize/check/snapshots) behind the Runner seam
    paths      volume_path: a volume's file, never outside its pool
    pools      build/activate/stats/refresh/delete of pools, the `default` pool
    fsmount    an fs pool's file system: blkid, mkfs, mount, umount, mountinfo
    volumes    create (model or vol-create-as), clone, import, delete, resize, describe
    transfer   upload/download (offset, length) and wipe
    display    pool-list, pool-info, vol-list, vol-info text in virsh's layout

Knows nothing of pool state (active, autostart) or of domains: callers pass what they know
(`in_use_by`, known formats). Imports only vmkit.model and vmkit.errors.

The facade is lazy (PEP 562): importing one module (say qemuimg) does not import the others.
"""

from __future__ import annotations

from vmkit.lazy import lazy_getattr

TYPE_CHECKING = False
if TYPE_CHECKING:
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

_HOME = {
    "DEFAULT_POOL_NAME": "paths",
    "PoolRow": "display",
    "PoolStats": "pools",
    "QemuImg": "qemuimg",
    "RefreshResult": "pools",
    "activate_pool": "pools",
    "backing_users": "volumes",
    "build_pool": "pools",
    "check_pool_target": "pools",
    "clone_volume": "volumes",
    "create_volume": "volumes",
    "create_volume_as": "volumes",
    "deactivate_pool": "pools",
    "default_pool": "pools",
    "delete_pool": "pools",
    "delete_volume": "volumes",
    "describe_volume": "volumes",
    "download_volume": "transfer",
    "format_pool_info": "display",
    "format_pool_list": "display",
    "format_vol_info": "display",
    "format_vol_list": "display",
    "import_image": "volumes",
    "pool_stats": "pools",
    "refresh_pool": "pools",
    "resize_volume": "volumes",
    "upload_volume": "transfer",
    "volume_path": "paths",
    "wipe_volume": "transfer",
    "with_stats": "pools",
}


__getattr__ = lazy_getattr(__name__, _HOME)

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
