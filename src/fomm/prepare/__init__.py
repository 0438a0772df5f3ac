"""``fomm prepare``: a folder of raw videos becomes a training set that ``fomm train`` reads as it is.

::

    from fomm.prepare import prepare
    manifest = prepare("phone_videos/", "data/mine", category="face", size=256)
    print(manifest["counts"])          # videos, clips, train, test, frames, dropped by reason

The layout written (the original FOMM's): ``DATA/train/<source id>#<n>.mp4`` and
``DATA/test/<source id>#<n>.mp4`` (PNG folders with ``format="png"``), one clip per shot and
subject, every clip of a source in one split; ``DATA/prepare.json`` lists the clips (``name``,
``split``, ``source``, ``start``, ``end`` exclusive, ``box``) and the dropped videos and clips with
their reason; ``DATA/prepare.png`` shows sample clips' boxes on their source frames.

The modules, in the order a video meets them:

* :mod:`fomm.prepare.find`: the videos of the raw folder and their ids;
* :mod:`fomm.prepare.split`: train/test by source, and shards;
* :mod:`fomm.prepare.decode`: reading any file FFmpeg reads, broken ones included;
* :mod:`fomm.prepare.shots`: shot cuts and motion;
* :mod:`fomm.prepare.track`: the subject's tracks (faces, moving objects, or the full frame);
* :mod:`fomm.prepare.clips`: boxes, filters, and writing the crops;
* :mod:`fomm.prepare.video`: one video from start to record;
* :mod:`fomm.prepare.run` and :mod:`fomm.prepare.manifest`: the pool, resume, and ``prepare.json``;
* :mod:`fomm.prepare.cli`: ``fomm prepare``.
"""

from fomm.prepare.cli import register
from fomm.prepare.find import Source, find_sources, source_id
from fomm.prepare.options import PrepareOptions
from fomm.prepare.run import prepare
from fomm.prepare.split import assign_splits, in_shard, parse_shard

__all__ = [
    "PrepareOptions",
    "Source",
    "assign_splits",
    "find_sources",
    "in_shard",
    "parse_shard",
    "prepare",
    "register",
    "source_id",
]
