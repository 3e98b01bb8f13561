"""Helpers shared by the real-program scenarios (scripts/real/run.py).

Everything here is bounded: every wait has a deadline, every server is started in
its own session/process group and stopped by that id, every port is chosen by
binding port 0 on 127.0.0.1 first.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("off", "log", "fix")


class Failure(AssertionError):
    pass


class Report:
    """Collects observations and failed checks for one scenario."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.notes = []
        self.t0 = time.monotonic()

    def note(self, msg):
        line = f"[{self.name}] {msg}"
        self.notes.append(line)
        print(line, flush=True)

    def check(self, cond, msg):
        if cond:
            print(f"[{self.name}]   ok: {msg}", flush=True)
        else:
            print(f"[{self.name}] FAIL: {msg}", flush=True)
            self.failures.append(msg)
        return bool(cond)

    def elapsed(self):
        return time.monotonic() - self.t0


# ---------------------------------------------------------------- processes

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


CREATED = []


def make_tmpdir(tag, world=False):
    """A fresh directory under $EXECGUARD_REAL_TMP (or the system's temp dir).
    world=True: always in the system's temp dir, so that an unprivileged user
    (nginx's workers run as nobody) can reach it whatever the checkout's path is."""
    base = None if world else (os.environ.get("EXECGUARD_REAL_TMP") or None)
    if base:
        os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix=f"eg-{tag}-", dir=base)
    CREATED.append(d)
    return d


def cleanup_tmpdirs():
    for d in CREATED:
        shutil.rmtree(d, ignore_errors=True)
    CREATED.clear()


def base_env(mode, lib, log, extra=None):
    """A small, explicit environment for a host process.  mode 'off' = no shim."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
    }
    if mode != "off":
        env["LD_PRELOAD"] = lib
        env["EXECGUARD_MODE"] = mode
        env["EXECGUARD_LOG"] = log
    if extra:
        env.update(extra)
    return env


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        # state is the field after the ")" closing comm
        return st[st.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def wait_until(pred, timeout, step=0.05):
    """Poll pred() until truthy or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def kill_group(pgid, grace=3.0):
    """SIGTERM a process group, then SIGKILL what is left.  Bounded."""
    if not pgid or pgid <= 1:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if wait_until(lambda: not group_members(pgid), grace):
            return


def group_members(pgid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            rest = st[st.rindex(")") + 2:].split()
            if rest[0] != "Z" and int(rest[2]) == pgid:
                out.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return out


def proc_table():
    """pid -> (ppid, comm) for every live process."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            comm = st[st.index("(") + 1:st.rindex(")")]
            rest = st[st.rindex(")") + 2:].split()
            if rest[0] == "Z":
                continue
            t[int(d)] = (int(rest[1]), comm)
        except (OSError, ValueError, IndexError):
            pass
    return t


def descendants(pid):
    t = proc_table()
    kids = {}
    for p, (pp, _) in t.items():
        kids.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append((k, t[k][1]))
            todo.append(k)
    return out


def children(pid):
    return [(p, c) for p, (pp, c) in proc_table().items() if pp == pid]


def fd_targets(pid):
    """fd -> readlink target for a process (empty dict if it is gone)."""
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            pass
    return out


def socket_inodes(pid):
    out = set()
    for tgt in fd_targets(pid).values():
        if tgt.startswith("socket:["):
            out.add(int(tgt[8:-1]))
    return out


def sigmask(pid, field="SigBlk", tid=None):
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1], 16)
    except OSError:
        return None
    return None


def sig_names(mask):
    names = []
    for n in range(1, 65):
        if mask & (1 << (n - 1)):
            try:
                names.append(signal.Signals(n).name)
            except ValueError:
                names.append(str(n))
    return names


def tcp_listen_inodes(port):
    """Inodes of LISTEN sockets on a local TCP port (v4 and v6)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    local, state, inode = p[1], p[3], int(p[9])
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    return inodes


def http_get(url, timeout):
    """(status, body text, seconds) or (None, error string, seconds)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace"), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), time.monotonic() - t0
    except Exception as e:  # timeout, refused, reset
        return None, f"{type(e).__name__}: {e}", time.monotonic() - t0


def wait_http(url, timeout):
    return wait_until(lambda: http_get(url, 1.0)[0] == 200, timeout, 0.1)


def compile_c(src_name, outdir, extra=()):
    src = os.path.join(HERE, src_name)
    out = os.path.join(outdir, os.path.splitext(src_name)[0])
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O1", "-g", "-Wall", "-o", out, src, *extra], check=True, timeout=120)
    return out


# ---------------------------------------------------------------- events

def events(path):
    evs = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    evs.append(json.loads(line))
                except ValueError as e:
                    raise Failure(f"{path}:{n}: not JSON ({e}): {line[:200]}")
    except FileNotFoundError:
        pass
    return evs


def named(evs, name):
    return [e for e in evs if e.get("event") == name]


COMMON_FIELDS = ("v", "ts", "event", "severity", "action", "pid", "ppid", "tid", "exe", "mode")


def check_common(rep, evs, mode):
    """Every event carries the common fields with sane values."""
    bad = []
    for e in evs:
        missing = [k for k in COMMON_FIELDS if k not in e]
        if missing or e.get("v") != 1 or e.get("mode") != mode or e.get("action") not in ("logged", "fixed") \
                or e.get("severity") not in ("warn", "info") or not isinstance(e.get("ts"), (int, float)) \
                or not all(isinstance(e.get(k), int) and e.get(k) > 0 for k in ("pid", "ppid", "tid")) \
                or not str(e.get("exe", "")).startswith("/"):
            bad.append((missing, e))
    rep.check(not bad, f"all {len(evs)} events carry the common fields with mode={mode}"
              + (f" (first bad: {bad[0]})" if bad else ""))


def summarize(evs):
    out = {}
    for e in evs:
        k = (e.get("event"), e.get("action"))
        out[k] = out.get(k, 0) + 1
    return ", ".join(f"{k[0]}/{k[1]}×{v}" for k, v in sorted(out.items())) or "(none)"


def fd_details(ev, kind=None):
    return [f.get("detail") for f in ev.get("fds", []) if kind is None or f.get("kind") == kind]


def short(ev, n=600):
    s = json.dumps(ev, sort_keys=True)
    return s if len(s) <= n else s[:n] + "…"


def which_or_fail(names):
    missing = [n for n in names if not shutil.which(n)]
    if missing:
        raise Failure(f"missing programs {missing}: run scripts/real/install-deps.sh")


def dump_file(path, limit=3000):
    try:
        with open(path, errors="replace") as f:
            data = f.read()
        return data[-limit:]
    except OSError as e:
        return f"<{e}>"


def main_guard(fn):
    try:
        return fn()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
