"""Test data for tests/ci_reports.rs: a small pytest suite run under
`execguard run --report …`. Two tests start C helpers that leak (a listener
without CLOEXEC, a SIGALRM mask blocked in a thread); the tests around them are
clean and must not be named by any finding. EG_CI_BIN is where the helpers are
built, EG_CI_PORT the listener's port."""
import os
import subprocess
import sys
import tempfile

BIN = os.environ.get("EG_CI_BIN", "")


def test_clean_arithmetic():
    assert sum(range(10)) == 45


def test_clean_subprocess():
    # subprocess closes every fd above 2 and restores signals: nothing to report.
    out = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, check=True, timeout=60)
    assert out.stdout == b"ok\n"


def test_listener_leak():
    subprocess.run([os.path.join(BIN, "listener_child"), os.environ.get("EG_CI_PORT", "25011")], check=True, timeout=60)


def test_clean_tempfile():
    with tempfile.TemporaryFile() as f:
        f.write(b"x")
        f.seek(0)
        assert f.read() == b"x"
    subprocess.run(["/bin/true"], check=True, timeout=60)


def test_blocked_alarm():
    subprocess.run([os.path.join(BIN, "alarm_thread")], check=True, timeout=60)


def test_clean_last():
    assert "execguard"[:4] == "exec"
