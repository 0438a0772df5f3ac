"""fomm.errors: the one-line error and the counts in messages."""

from fomm.errors import FommError, plural


def test_plural_agrees_with_the_count():
    assert [plural(n, "frame") for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]
    assert plural(1, "PNG frame") == "1 PNG frame" and plural(3, "NaN or infinite value") == "3 NaN or infinite values"
    assert plural(2, "index", "indices") == "2 indices" and plural(1, "index", "indices") == "1 index"


def test_fomm_error_is_one_line():
    assert str(FommError("bad\nthing")) == "bad thing"
