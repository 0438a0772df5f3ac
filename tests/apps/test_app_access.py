"""fomm.apps.access: passwords, upload sizes and the exposure warning of ``fomm app``."""

from __future__ import annotations

import argparse

import pytest

from fomm.apps import access, app
from fomm.cli import main
from fomm.errors import FommError


def test_credentials_from_arguments_and_a_file(tmp_path):
    assert access.parse_credential("alice:s3:cret") == ("alice", "s3:cret")  # ':' allowed in passwords
    for bad in ("alice", ":pw", "alice:", " :pw"):
        with pytest.raises(FommError, match="expected USER:PASSWORD") as info:
            access.parse_credential(bad)
        assert "\n" not in str(info.value)
    users = tmp_path / "users.txt"
    users.write_text("# team\nbob:pa55\n\n  carol:x y z  \n")
    assert access.read_auth_file(users) == [("bob", "pa55"), ("carol", "x y z")]
    assert access.credentials(["alice:pw"], users) == [("alice", "pw"), ("bob", "pa55"), ("carol", "x y z")]
    assert access.credentials(None, None) is None and access.credentials([], None) is None


def test_credential_errors_name_the_line_and_never_the_password(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("bob:pa55\nsecretword-without-colon\n")
    with pytest.raises(FommError, match=r"line 2: expected USER:PASSWORD") as info:
        access.read_auth_file(users)
    assert "secretword" not in str(info.value)
    users.write_text("# nobody yet\n")
    with pytest.raises(FommError, match="has no USER:PASSWORD line"):
        access.read_auth_file(users)
    with pytest.raises(FommError, match="cannot read --auth-file"):
        access.read_auth_file(tmp_path / "missing.txt")
    users.write_text("bob:two\n")
    with pytest.raises(FommError, match="user 'bob' is given more than once"):
        access.credentials(["bob:one"], users)


def test_sizes():
    assert access.parse_size("200MB") == 200_000_000 == access.parse_size(access.DEFAULT_MAX_UPLOAD)
    assert access.parse_size("1.5gb") == 1_500_000_000 and access.parse_size("500 KB") == 500_000
    assert access.parse_size("2m") == 2_000_000 and access.parse_size("1000") == 1000 == access.parse_size(1000)
    for bad in ("lots", "0", "-5MB", "3TB"):
        with pytest.raises(FommError, match="is not a size"):
            access.parse_size(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        access.size_argument("lots")
    assert access.format_size(200_000_000) == "200 MB" and access.format_size(1_500_000_000) == "1.5 GB"
    assert access.format_size(10_000) == "10 KB" and access.format_size(999) == "999 bytes"
    assert access.format_size(1) == "1 byte"


def test_loopback_and_the_warning():
    assert all(access.is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"))
    assert not any(access.is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "myhost.lan"))
    line = access.exposure_warning("0.0.0.0", 7860, None)
    assert line.startswith("fomm app: warning: listening on 0.0.0.0:7860 without --auth") and "\n" not in line
    assert access.exposure_warning("0.0.0.0", 7860, [("a", "b")]) is None
    assert access.exposure_warning("127.0.0.1", 7860, None) is None


class FakeBlocks:
    def close(self):
        pass


class FakeAnimator:
    def close(self):
        pass


@pytest.fixture
def fake_launch(monkeypatch):
    """``fomm app`` without a server (nothing binds a non-loopback address in the tests)."""
    calls = []

    def launch(host, port, device, auth=None, max_upload=None, **model):
        calls.append(dict(host=host, port=port, auth=auth, max_upload=max_upload))
        return FakeBlocks(), f"http://{host}:{port}/", FakeAnimator()

    def stop():
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "launch", launch)
    monkeypatch.setattr(app, "wait_forever", stop)
    return calls


def test_cli_warns_on_a_network_address_without_auth(fake_launch, capsys, tmp_path):
    assert main(["app", "--host", "0.0.0.0", "--port", "8123"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [access.exposure_warning("0.0.0.0", 8123, None)]
    assert "uploads up to 200 MB" in out and fake_launch[-1]["auth"] is None
    assert fake_launch[-1]["max_upload"] == 200_000_000
    users = tmp_path / "users.txt"
    users.write_text("bob:pa55\n")
    args = ["app", "--host", "0.0.0.0", "--auth", "alice:pw", "--auth-file", str(users), "--max-upload", "1GB"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and "2 users may log in" in out and "uploads up to 1 GB" in out
    assert fake_launch[-1]["auth"] == [("alice", "pw"), ("bob", "pa55")]
    assert fake_launch[-1]["max_upload"] == 1_000_000_000
    assert main(["app"]) == 0  # this machine only: no warning
    assert "warning" not in capsys.readouterr().err


def test_cli_bad_access_options_are_one_line(fake_launch, capsys):
    assert main(["app", "--auth", "alice"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fomm app: error: --auth: expected USER:PASSWORD") and "\n" not in err
    with pytest.raises(SystemExit) as info:
        main(["app", "--max-upload", "lots"])
    assert info.value.code == 2
    assert "--max-upload" in capsys.readouterr().err
    assert fake_launch == []


def test_help_says_who_can_use_it(capsys):
    with pytest.raises(SystemExit):
        main(["app", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "without --auth anyone who can reach the port can use this machine" in out
    assert "--auth USER:PASSWORD" in out and "--auth-file FILE" in out and "--max-upload SIZE" in out
    assert "place in it" in out  # the queue
