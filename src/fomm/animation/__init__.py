"""Animation: the algorithm, the file-to-file pipeline and the ``fomm animate`` command.

* :mod:`fomm.animation.engine`: relative / absolute motion from keypoints (``fomm.animate``).
* :mod:`fomm.animation.options`: :class:`AnimateOptions`, every option of ``fomm animate``, checked once.
* :mod:`fomm.animation.pipeline`: files in, files out (``fomm.animate_video``), in steps:
  :mod:`~fomm.animation.sources`, :mod:`~fomm.animation.driving`, :mod:`~fomm.animation.best_frame`,
  :mod:`~fomm.animation.output`, :mod:`~fomm.animation.progress`; it returns
  :mod:`~fomm.animation.results`.
* :mod:`fomm.animation.cli`: ``fomm animate``.
"""
