"""``kanir.distributed``: the short name of :mod:`kanir.train.distributed`, the helpers for
training under torchrun (``session``, ``setup``/``teardown``, ``rank``, ``is_main``,
``shard_dataset``); see docs/scale.md."""

from kanir.errors import DistributedError
from kanir.train.distributed import (
    Comm,
    current,
    is_active,
    is_main,
    rank,
    session,
    setup,
    shard_dataset,
    shard_rows,
    teardown,
    world_size,
    writes_files,
)

__all__ = ["Comm", "DistributedError", "current", "is_active", "is_main", "rank", "session",
           "setup", "shard_dataset", "shard_rows", "teardown", "world_size", "writes_files"]
