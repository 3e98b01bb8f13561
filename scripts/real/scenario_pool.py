"""Scenario 3: a monitor with a 1030-socket UDP pool runs probes.

monitor.c opens 1030 UDP sockets without CLOEXEC, then runs
  (a) the Python probe pool_probe.py with fork+execvp  -> select.select() on its socket
  (b) the C probe select_probe with system()            -> select(nfds > FD_SETSIZE)
  (c) the C probe select_probe with posix_spawnp
Without the shim the probes' sockets land at fd >= 1024.
"""

import os
import re
import subprocess
import sys

import realtest as rt

NSOCK = 1030
PY_FD = re.compile(r"pool_probe: fd (\d+)")
C_FD = re.compile(r"select_probe: fd (\d+) nfds (\d+) select=(-?\d+)")


def run_probe(mode, lib, log, argv, d):
    env = rt.base_env(mode, lib, log)
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=d)
    return r.returncode, r.stdout + r.stderr


def run_mode(rep, mode, lib, bins):
    d = rt.make_tmpdir(f"pool-{mode}")
    log = os.path.join(d, "execguard.jsonl")
    mon = bins["monitor"]
    py = os.path.realpath(sys.executable)
    o = {"mode": mode}
    o["py"] = run_probe(mode, lib, log, [mon, str(NSOCK), "fork", "20", py, os.path.join(rt.HERE, "pool_probe.py")], d)
    o["sys"] = run_probe(mode, lib, log, [mon, str(NSOCK), "system", "20", bins["select_probe"]], d)
    o["spawn"] = run_probe(mode, lib, log, [mon, str(NSOCK), "spawn", "20", bins["select_probe"]], d)
    for k in ("py", "sys", "spawn"):
        rc, out = o[k]
        rep.note(f"{mode}/{k}: exit {rc}: " + " | ".join(l for l in out.splitlines() if "monitor: pool" not in l))
    o["events"] = rt.events(log) if mode != "off" else []
    return o


def _fd(out, rx):
    m = rx.search(out)
    return int(m[1]) if m else None


def assert_off_like(rep, o, mode):
    rc, out = o["py"]
    fd = _fd(out, PY_FD)
    rep.check(rc == 3 and fd is not None and fd >= 1024
              and "ValueError: filedescriptor out of range in select()" in out,
              f"{mode}: python probe's socket is fd {fd} >= 1024 and select.select raises "
              f"ValueError 'filedescriptor out of range in select()' (exit {rc})")
    for k in ("sys", "spawn"):
        rc, out = o[k]
        fd = _fd(out, C_FD)
        rep.check(rc == 3 and fd is not None and fd >= 1024,
                  f"{mode}: C probe via {k}: socket fd {fd} >= FD_SETSIZE, select called with nfds {fd + 1 if fd else None}")


def assert_fix_behaviour(rep, o):
    rc, out = o["py"]
    fd = _fd(out, PY_FD)
    rep.check(rc == 0 and fd is not None and fd < 1024 and "select ok, writable=True" in out,
              f"fix: python probe's socket is fd {fd} < 1024 and select.select succeeds (exit {rc})")
    for k in ("sys", "spawn"):
        rc, out = o[k]
        fd = _fd(out, C_FD)
        rep.check(rc == 0 and fd is not None and fd < 1024, f"fix: C probe via {k}: fd {fd} < 1024, select ok (exit {rc})")


def _udp_pool_event(e):
    return e.get("kinds", {}).get("udp") == NSOCK and e.get("fds_total", 0) >= NSOCK \
        and all(f.get("kind") == "udp" and str(f.get("detail", "")).startswith("127.0.0.1:") for f in e.get("fds", [])
                if f.get("kind") == "udp") \
        and len(e.get("fds", [])) + e.get("fds_omitted", 0) == e.get("fds_total")


def assert_events(rep, o, mode):
    evs = o["events"]
    rep.note(f"{mode}: events: {rt.summarize(evs)}")
    rt.check_common(rep, evs, mode)
    want = "fixed" if mode == "fix" else "logged"
    for via, tgt in (("execvp", "python"), ("system", "select_probe"), ("posix_spawnp", "select_probe")):
        ev = [e for e in rt.named(evs, "exec_fd_leak") if e.get("via") == via and tgt in str(e.get("target"))
              and e.get("exe", "").endswith("monitor")]
        good = [e for e in ev if _udp_pool_event(e)]
        rep.check(bool(good), f"{mode}: exec_fd_leak via={via} target …{tgt}… from monitor: kinds.udp={NSOCK}, "
                  f"fds_total, fds cut with fds_omitted" + (f": {rt.short(ev[0], 400)}" if ev else " (none)"))
        if good:
            rep.check(good[0].get("action") == want, f"{mode}: … action={good[0].get('action')}")
    if mode == "log":
        st = [e for e in rt.named(evs, "startup_fds") if "python" in e.get("exe", "")]
        good = [e for e in st if _udp_pool_event(e) and str(e.get("parent_exe", "")).endswith("monitor")]
        rep.check(bool(good), f"log: startup_fds in the python probe, kinds.udp={NSOCK}, parent_exe monitor"
                  + (f": {rt.short(st[0], 400)}" if st else " (none)"))
        so = [e for e in rt.named(evs, "select_fd_overflow") if "select_probe" in e.get("exe", "")]
        fd = _fd(o["sys"][1], C_FD)
        rep.check(bool(so) and any(e.get("nfds") == fd + 1 and fd in e.get("fds", []) and e.get("func") == "select"
                                   for e in so),
                  f"log: select_fd_overflow from select_probe with func=select nfds={fd + 1 if fd else None} fds∋{fd}"
                  + (f": {rt.short(so[0])}" if so else " (none)"))
    else:
        so = rt.named(evs, "select_fd_overflow")
        rep.check(not so, f"fix: no select_fd_overflow (the probes' fds stay low) {[rt.short(e, 200) for e in so[:1]]}")


def run(lib, modes=rt.MODES):
    rep = rt.Report("pool")
    work = rt.make_tmpdir("pool-bin")
    bins = {n: rt.compile_c(f"{n}.c", work) for n in ("monitor", "select_probe")}
    for mode in modes:
        o = run_mode(rep, mode, lib, bins)
        if mode in ("off", "log"):
            assert_off_like(rep, o, mode)
        else:
            assert_fix_behaviour(rep, o)
        if mode != "off":
            assert_events(rep, o, mode)
    rep.note(f"scenario time {rep.elapsed():.1f}s")
    return rep
