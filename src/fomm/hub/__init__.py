"""Published checkpoints: ``fomm models`` lists them, ``fomm download`` fetches and verifies them.

The names and the cache they are downloaded into belong to the model layer
(:mod:`fomm.models.registry`, torch-free), where :func:`fomm.load_model` looks them up; this
package is the download (:mod:`fomm.hub.fetch`, imported when it is used) and the commands.
"""

from fomm.models.registry import BUILTIN, Checkpoint, cache_dir, cached_path, registry, resolve_checkpoint


def download(*args, **kwargs):
    """See :func:`fomm.hub.fetch.download`."""
    from fomm.hub.fetch import download as _download

    return _download(*args, **kwargs)


__all__ = ["BUILTIN", "Checkpoint", "cache_dir", "cached_path", "download", "registry", "resolve_checkpoint"]
