"""Animation: the algorithm, the file-to-file pipeline and the ``fomm animate`` command.

* :mod:`fomm.animation.engine`: relative / absolute motion from keypoints (``fomm.animate``).
* :mod:`fomm.animation.pipeline`: files in, files out (``fomm.animate_video``).
* :mod:`fomm.animation.cli`: ``fomm animate``.
"""
