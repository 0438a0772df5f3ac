"""Published checkpoints: ``fomm models`` lists them, ``fomm download`` fetches and verifies them.

The listing and name resolution (:mod:`fomm.hub.registry`) import no torch; the download
(:mod:`fomm.hub.fetch`) is imported when it is used.
"""

from fomm.hub.registry import BUILTIN, Checkpoint, cache_dir, cached_path, registry, resolve_checkpoint


def download(*args, **kwargs):
    """See :func:`fomm.hub.fetch.download`."""
    from fomm.hub.fetch import download as _download

    return _download(*args, **kwargs)


__all__ = ["BUILTIN", "Checkpoint", "cache_dir", "cached_path", "download", "registry", "resolve_checkpoint"]
