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
    # Each launch must be reported with the whole pool counted: by the spawn side in the
    # monitor (exec_fd_leak via …), or -- when the spawn side handed the audit on, or
    # missed it -- by the start side of the child (startup_fds, parent_exe monitor).
    for via, tgt, child in (("execvp", "python", "python"), ("system", "select_probe", "dash"),
                            ("posix_spawnp", "select_probe", "select_probe")):
        ev = [e for e in rt.named(evs, "exec_fd_leak") if e.get("via") == via
              and tgt in str(e.get("target")) + " ".join(map(str, e.get("argv", [])))
              and e.get("exe", "").endswith("monitor")]
        good = [e for e in ev if _udp_pool_event(e)]
        st = [e for e in rt.named(evs, "startup_fds") if child in e.get("exe", "")
              and str(e.get("parent_exe", "")).endswith("monitor") and _udp_pool_event(e)]
        rep.check(bool(good) or bool(st),
                  f"{mode}: the {via} launch of {tgt} is reported with kinds.udp={NSOCK}, fds_total={NSOCK}, "
                  f"fds cut + fds_omitted: " + (f"exec_fd_leak via={via} from monitor" if good else "")
                  + (" + " if good and st else "") + (f"startup_fds in {child}" if st else "")
                  + (f" {rt.short((good or st)[0], 300)}" if good or st else " (neither)"))
        if not good:
            rep.note(f"{mode}: NOTE no spawn-side exec_fd_leak via={via} (only the start side saw it)")
        for e in good + st:
            if e.get("action") != want:
                rep.check(False, f"{mode}: {e.get('event')} action={e.get('action')}, want {want}")
    if mode == "log":
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
