"""Scenario 2: uWSGI --threads + subprocess of a program that needs SIGALRM.

uWSGI blocks every signal in the worker threads with core_id > 0; the mask survives
Python's subprocess (vfork+exec), so alarm_probe (and hping3) never get SIGALRM.
The app (uwsgi_app.py) answers result=hang after a timeout instead of blocking.
"""

import concurrent.futures as cf
import os
import re
import shutil
import socket
import subprocess

import realtest as rt

ANSWER = re.compile(r"tid=(\d+) main=(\d) sigblk=(\w+) result=([\w-]+) probe=\[(.*)\]")
SIGALRM_BIT = 1 << 13


def _fire(url, n, conc, timeout):
    def one(_):
        st, body, secs = rt.http_get(url, timeout)
        m = ANSWER.match(body or "") if st == 200 else None
        if not m:
            return {"error": f"{st} {body!r}", "secs": secs}
        return {"tid": int(m[1]), "main": m[2] == "1", "sigblk": int(m[3], 16), "result": m[4],
                "probe": m[5], "secs": secs}

    with cf.ThreadPoolExecutor(conc) as ex:
        return list(ex.map(one, range(n)))


def _tally(rs):
    t = {}
    for r in rs:
        k = ("main" if r.get("main") else "other", r.get("result", "error"))
        t[k] = t.get(k, 0) + 1
    return ", ".join(f"{a} thread:{b}×{c}" for (a, b), c in sorted(t.items()))


def run_mode(rep, mode, lib, probe, n_alarm, n_hping):
    d = rt.make_tmpdir(f"uwsgi-{mode}")
    log = os.path.join(d, "execguard.jsonl")
    port = rt.free_port()
    # hping3 needs something to SYN: a listening socket of our own on loopback.
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(64)
    hport = target.getsockname()[1]
    hping = shutil.which("hping3") if n_hping else None
    env = rt.base_env(mode, lib, log, {"EG_PROBE": probe, "EG_PROBE_ARG": "200", "EG_PROBE_TIMEOUT": "2"})
    pidfile = os.path.join(d, "uwsgi.pid")
    ulog = os.path.join(d, "uwsgi.log")
    cmd = ["uwsgi", "--plugin", "python3", "--master", "--processes", "1", "--threads", "4",
           "--http-socket", f"127.0.0.1:{port}", "--wsgi-file", os.path.join(rt.HERE, "uwsgi_app.py"),
           "--pidfile", pidfile, "--logto", ulog, "--die-on-term", "--need-app", "--disable-logging"]
    obs = {"mode": mode, "dir": d}
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd=d)
    try:
        if not rt.wait_http(f"http://127.0.0.1:{port}/", 15):
            raise rt.Failure(f"uwsgi ({mode}) not answering within 15s:\n{rt.dump_file(ulog)}")
        workers = [p for p, c in rt.children(proc.pid)]
        worker = workers[0] if workers else None
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{worker}/task")) if worker else []
        masks_before = {t: rt.sigmask(worker, tid=t) for t in tasks}
        obs["thread_masks"] = {t: f"{m:016x}" for t, m in masks_before.items() if m is not None}
        rep.note(f"{mode}: uwsgi master {proc.pid} worker {worker}; thread SigBlk {obs['thread_masks']}")

        rs = _fire(f"http://127.0.0.1:{port}/", n_alarm, 4, 10)
        obs["alarm"] = rs
        rep.note(f"{mode}: {n_alarm} requests running alarm_probe: {_tally(rs)}")
        if hping:
            # same app; ?hping=PORT makes it run hping3 instead of alarm_probe
            rh = _fire(f"http://127.0.0.1:{port}/?hping={hport}", n_hping, 4, 10)
            obs["hping"] = rh
            rep.note(f"{mode}: {n_hping} requests running hping3 -c 1 127.0.0.1:{hport}: {_tally(rh)}")
        else:
            obs["hping"] = []
        masks_after = {t: rt.sigmask(worker, tid=t) for t in tasks}
        obs["masks_unchanged"] = masks_after == masks_before
        # graceful stop: uWSGI's own signal handling must still work
        os.kill(proc.pid, 15)
        try:
            proc.wait(10)
            obs["stopped"] = True
        except subprocess.TimeoutExpired:
            obs["stopped"] = False
    finally:
        rt.kill_group(proc.pid)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        target.close()
    obs["events"] = rt.events(log) if mode != "off" else []
    obs["ulog"] = ulog
    return obs


def _check_requests(rep, mode, o, expect_hang):
    for kind in ("alarm", "hping"):
        rs = o[kind]
        if not rs:
            continue
        errs = [r for r in rs if "error" in r]
        rep.check(not errs, f"{mode}/{kind}: every request answered"
                  + (f" {errs[:2]}\n{rt.dump_file(o['ulog'])}" if errs else ""))
        others = [r for r in rs if "error" not in r and not r["main"]]
        mains = [r for r in rs if "error" not in r and r["main"]]
        rep.check(len(others) >= 1, f"{mode}/{kind}: {len(others)} request(s) served by threads with core_id > 0")
        if expect_hang:
            # alarm_probe hangs.  hping3 hangs too, unless another hping3 on lo answers first:
            # then it stops without having sent anything and divides by zero in its
            # statistics (killed by SIGFPE) -- a failure all the same.
            bad = ("hang",) if kind == "alarm" else ("hang", "killed-SIGFPE")
            rep.check(all(r["result"] in bad and r["sigblk"] & SIGALRM_BIT for r in others),
                      f"{mode}/{kind}: every request on a core_id > 0 thread fails ({'/'.join(bad)}; "
                      f"its thread blocks SIGALRM): "
                      f"{[(r['result'], r['probe'][:60]) for r in others][:3]}")
            rep.check(all(r["result"] == "ok" for r in mains),
                      f"{mode}/{kind}: requests on the main thread (core 0) succeed ({len(mains)})")
        else:
            rep.check(all(r["result"] == "ok" for r in rs if "error" not in r),
                      f"{mode}/{kind}: all {len(rs)} requests succeed, {len(others)} of them on core_id > 0 threads "
                      f"{[(r['result'], r['probe'][:70]) for r in rs if r.get('result') != 'ok'][:3]}")
    if o["alarm"] and not expect_hang:
        probe_masks = [r["probe"] for r in o["alarm"] if not r.get("main") and "error" not in r]
        rep.check(all("SIGALRM unblocked" in p for p in probe_masks),
                  f"{mode}: alarm_probe started from core_id > 0 threads sees SIGALRM unblocked {probe_masks[:1]}")
    rep.check(o["masks_unchanged"], f"{mode}: uWSGI's own thread masks are unchanged ({o['thread_masks']})")
    rep.check(o["stopped"], f"{mode}: uWSGI stops on SIGTERM within 10s")


def assert_events(rep, o, mode):
    evs = o["events"]
    rep.note(f"{mode}: events: {rt.summarize(evs)}")
    rt.check_common(rep, evs, mode)
    want_action = "fixed" if mode == "fix" else "logged"
    ex = [e for e in rt.named(evs, "exec_sigmask") if "alarm_probe" in str(e.get("target"))
          and "SIGALRM" in e.get("signals", [])]
    st = [e for e in rt.named(evs, "startup_sigmask") if "SIGALRM" in e.get("signals", [])
          and "alarm_probe" in e.get("exe", "")]
    # The spawn side (exec_sigmask in the uwsgi worker's vfork child) or, when the exec
    # was not audited there, the start side of alarm_probe (startup_sigmask).
    rep.check(bool(ex or st), f"{mode}: SIGALRM reported blocked for alarm_probe: {len(ex)} exec_sigmask, "
              f"{len(st)} startup_sigmask" + (f": {rt.short((ex or st)[0], 400)}" if ex or st else ""))
    for e in ex + st:
        if e.get("action") != want_action:
            rep.check(False, f"{mode}: {e.get('event')} action={e.get('action')}, want {want_action}")
            break
    if ex:
        rep.check(all("uwsgi" in e.get("exe", "") for e in ex), f"{mode}: exec_sigmask logged from the uwsgi "
                  f"worker (exe {ex[0].get('exe')})")
        # Who blocked SIGALRM: uWSGI's worker-thread start (core_id > 0).  Python's
        # subprocess blocks everything around vfork and restores the old mask in the
        # child; that restore is not where the mask came from.
        rep.check(any("uwsgi" in str(e.get("blocked_by", "")) for e in ex),
                  f"{mode}: exec_sigmask blocked_by names uwsgi (got {sorted(set(str(e.get('blocked_by')) for e in ex))[:3]})")
    if st:
        rep.check(all("uwsgi" in str(e.get("parent_exe", "")) for e in st),
                  f"{mode}: startup_sigmask parent_exe is uwsgi ({st[0].get('parent_exe')})")
    sb = [e for e in rt.named(evs, "sigmask_block") if "SIGALRM" in e.get("signals", [])]
    rep.check(bool(sb) and any("uwsgi" in str(e.get("caller", "")) for e in sb),
              f"{mode}: sigmask_block (info) naming SIGALRM with caller in uwsgi "
              f"({sorted(set(str(e.get('caller')) for e in sb))[:4]})")


def assert_off(rep, o):
    _check_requests(rep, "off", o, expect_hang=True)


def assert_log(rep, o):
    _check_requests(rep, "log", o, expect_hang=True)
    assert_events(rep, o, "log")


def assert_fix(rep, o):
    _check_requests(rep, "fix", o, expect_hang=False)
    # the start-side audit must not have needed to fix anything the exec side fixed
    assert_events(rep, o, "fix")


def run(lib, modes=rt.MODES):
    rep = rt.Report("uwsgi")
    rt.which_or_fail(["uwsgi"])
    if not os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so"):
        raise rt.Failure("uwsgi python3 plugin missing: install uwsgi-plugin-python3")
    work = rt.make_tmpdir("uwsgi-bin")
    probe = rt.compile_c("alarm_probe.c", work)
    n_hping = 4 if (shutil.which("hping3") and os.geteuid() == 0) else 0
    if not n_hping:
        rep.note("hping3 part skipped (needs hping3 and root for raw sockets)")
    for mode in modes:
        n = 24 if mode == "fix" else 8
        o = run_mode(rep, mode, lib, probe, n, n_hping)
        {"off": assert_off, "log": assert_log, "fix": assert_fix}[mode](rep, o)
    rep.note(f"scenario time {rep.elapsed():.1f}s")
    return rep
