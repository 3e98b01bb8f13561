"""Scenario 1: nginx + Lua os.execute("curl ... its own port").

One worker; two listeners on 127.0.0.1; /self runs curl against nginx itself through
os.execute (system(3) in the worker), /ext runs curl against a helper server of the
driver, /other is a plain location.
"""

import http.server
import os
import signal
import subprocess
import threading
import time

import realtest as rt

NGINX = "/usr/sbin/nginx"
MODDIR = "/usr/lib/nginx/modules"
CURL_TIMEOUT = 3  # curl -m inside os.execute

CONF = """\
daemon on;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
load_module {moddir}/ndk_http_module.so;
load_module {moddir}/ngx_http_lua_module.so;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp-body;
    proxy_temp_path {d}/tmp-proxy;
    fastcgi_temp_path {d}/tmp-fastcgi;
    uwsgi_temp_path {d}/tmp-uwsgi;
    scgi_temp_path {d}/tmp-scgi;
    server {{
        listen 127.0.0.1:{p1};
        listen 127.0.0.1:{p2};
        location = /self {{
            content_by_lua_block {{
                local t0 = ngx.now()
                local st = os.execute("curl -s -m {ct} -o /dev/null http://127.0.0.1:{p1}/other")
                ngx.update_time()
                ngx.say("status=", tostring(st), " elapsed=", string.format("%.2f", ngx.now() - t0))
            }}
        }}
        location = /ext {{
            content_by_lua_block {{
                local t0 = ngx.now()
                local st = os.execute("curl -s -m {ct} -o /dev/null http://127.0.0.1:{p3}/ext")
                ngx.update_time()
                ngx.say("status=", tostring(st), " elapsed=", string.format("%.2f", ngx.now() - t0))
            }}
        }}
        location = /other {{ return 200 "other\\n"; }}
    }}
}}
"""


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ext\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def _status(body):
    # "status=7168 elapsed=3.01" -> (7168, 3.01)
    try:
        parts = dict(p.split("=", 1) for p in body.split())
        return int(parts["status"]), float(parts["elapsed"])
    except (KeyError, ValueError):
        return None, None


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def run_mode(rep, mode, lib):
    d = rt.make_tmpdir(f"nginx-{mode}", world=True)
    log = os.path.join(d, "execguard.jsonl")
    # nginx's workers drop to user "nobody" when the master is root: they must be able
    # to append to the log (the shim opens it per event) and nginx must reach its dir.
    os.chmod(d, 0o755)
    with open(log, "a"):
        pass
    os.chmod(log, 0o666)
    p1, p2 = rt.free_port(), rt.free_port()
    helper = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    p3 = helper.server_address[1]
    threading.Thread(target=helper.serve_forever, daemon=True).start()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(d=d, moddir=MODDIR, p1=p1, p2=p2, p3=p3, ct=CURL_TIMEOUT))
    env = rt.base_env(mode, lib, log)
    obs = {"mode": mode, "dir": d}
    master = None
    try:
        r = subprocess.run([NGINX, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise rt.Failure(f"nginx did not start ({mode}): {r.stderr.strip()}\n{rt.dump_file(os.path.join(d, 'error.log'))}")
        master = rt.wait_until(lambda: _read_pid(os.path.join(d, "nginx.pid")), 5)
        if not master:
            raise rt.Failure("no nginx.pid after 5s")
        if not rt.wait_http(f"http://127.0.0.1:{p1}/other", 10):
            raise rt.Failure(f"nginx not serving /other within 10s:\n{rt.dump_file(os.path.join(d, 'error.log'))}")
        workers = [p for p, c in rt.children(master)]
        rep.check(len(workers) == 1, f"{mode}: nginx master {master} has one worker {workers}")
        worker = workers[0] if workers else None
        listeners = rt.tcp_listen_inodes(p1) | rt.tcp_listen_inodes(p2)
        rep.check(len(listeners) == 2, f"{mode}: two listening sockets on 127.0.0.1:{p1},{p2}")

        # --- the self-request: observe curl while the worker waits in system()
        res = {}

        def req():
            res["r"] = rt.http_get(f"http://127.0.0.1:{p1}/self", 15)

        th = threading.Thread(target=req)
        th.start()
        curl = rt.wait_until(lambda: [p for p, c in rt.descendants(worker) if c == "curl"], 2.5, 0.02)
        held, sh_held = set(), set()
        chain = rt.descendants(worker)
        if curl:
            time.sleep(0.3)  # curl has connected and waits for the answer
            held = rt.socket_inodes(curl[0]) & listeners
            obs["curl_fds"] = rt.fd_targets(curl[0])
            for p, c in chain:
                if c == "sh":
                    sh_held |= rt.socket_inodes(p) & listeners
        th.join(20)
        status, body, secs = res.get("r", (None, "no answer", 0))
        cst, celapsed = _status(body or "")
        obs.update(curl_pid=curl[0] if curl else None, chain=chain, held=len(held), sh_held=len(sh_held),
                   self_status=status, self_body=(body or "").strip(), self_secs=round(secs, 2),
                   curl_exit=(cst >> 8) if cst is not None else None)
        rep.note(f"{mode}: worker {worker} -> {chain}; curl held {len(held)}/2 of nginx's listeners "
                 f"(sh {len(sh_held)}/2); "
                 f"GET /self -> {status} {obs['self_body']!r} in {secs:.2f}s")
        rep.check(bool(curl), f"{mode}: curl ran as a descendant of the worker")

        # --- a command that does not call back: must work in every mode
        st, body, secs = rt.http_get(f"http://127.0.0.1:{p1}/ext", 15)
        est, _ = _status(body or "")
        obs["ext"] = (st, (body or "").strip(), round(secs, 2))
        rep.check(st == 200 and est == 0 and secs < CURL_TIMEOUT,
                  f"{mode}: GET /ext (os.execute curl to another server) -> {st} {body.strip()!r} in {secs:.2f}s")
        st, body, secs = rt.http_get(f"http://127.0.0.1:{p2}/other", 5)
        rep.check(st == 200 and body == "other\n", f"{mode}: nginx still serves on the second port after the os.execute calls")

        # --- binary upgrade: USR2 to the master; the new master inherits the listeners via $NGINX
        os.kill(master, signal.SIGUSR2)
        newpid = rt.wait_until(lambda: os.path.exists(os.path.join(d, "nginx.pid.oldbin"))
                               and _read_pid(os.path.join(d, "nginx.pid")), 6)
        upgraded = bool(newpid) and newpid != master
        obs["upgrade_newmaster"] = newpid
        new_listeners = rt.socket_inodes(newpid) & listeners if upgraded else set()
        rep.check(upgraded, f"{mode}: USR2 started a new master ({newpid}, old {master})\n"
                  + ("" if upgraded else rt.dump_file(os.path.join(d, "error.log"))))
        rep.check(len(new_listeners) == 2,
                  f"{mode}: the new master holds both listening sockets, inherited through $NGINX ({len(new_listeners)}/2)")
        if upgraded:
            os.kill(master, signal.SIGQUIT)
            gone = rt.wait_until(lambda: not rt.pid_alive(master), 8)
            rep.check(gone, f"{mode}: old master {master} left after QUIT")
            ok = rt.wait_until(lambda: rt.http_get(f"http://127.0.0.1:{p1}/other", 1)[0] == 200
                               and rt.http_get(f"http://127.0.0.1:{p2}/other", 1)[0] == 200, 5)
            rep.check(bool(ok), f"{mode}: the upgraded nginx serves both ports")
        obs["errors"] = [l for l in rt.dump_file(os.path.join(d, "error.log"), 20000).splitlines()
                         if "[emerg]" in l or "[alert]" in l or "[crit]" in l]
        rep.check(not obs["errors"], f"{mode}: no emerg/alert/crit lines in nginx's error.log {obs['errors'][:3]}")
    finally:
        if master:
            rt.kill_group(os.getpgid(master) if rt.pid_alive(master) else master)
        helper.shutdown()
        helper.server_close()
    obs["events"] = rt.events(log) if mode != "off" else []
    obs["p1"], obs["p2"] = p1, p2
    return obs


def assert_off(rep, o):
    rep.check(o["held"] == 2, f"off: curl (pid {o['curl_pid']}) holds nginx's 2 listening sockets "
              f"(fds {sorted(k for k, v in (o.get('curl_fds') or {}).items() if v.startswith('socket:'))})")
    rep.check(o["self_secs"] >= CURL_TIMEOUT - 0.5 and o["curl_exit"] == 28,
              f"off: GET /self hangs until curl's {CURL_TIMEOUT}s timeout (curl exit {o['curl_exit']} = "
              f"CURLE_OPERATION_TIMEDOUT, {o['self_secs']}s)")


def _leak_events(o, action):
    p1, p2 = o["p1"], o["p2"]
    want = {f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"}
    hits = []
    for e in rt.named(o["events"], "exec_fd_leak") + rt.named(o["events"], "startup_fds"):
        det = set(rt.fd_details(e, "tcp_listen"))
        if want <= det and (action is None or e.get("action") == action):
            hits.append(e)
    return hits


def assert_events(rep, o, mode):
    evs = o["events"]
    rep.note(f"{mode}: events: {rt.summarize(evs)}")
    rt.check_common(rep, evs, mode)
    p1 = o["p1"]
    # target: the command (events.md) -- or /bin/sh with the command in argv
    sys_leaks = [e for e in rt.named(evs, "exec_fd_leak") if e.get("via") == "system"
                 and "curl" in str(e.get("target")) + " ".join(map(str, e.get("argv", [])))
                 and f"127.0.0.1:{p1}" in rt.fd_details(e, "tcp_listen")]
    rep.check(bool(sys_leaks), f"{mode}: exec_fd_leak via=system, target=curl…, naming tcp_listen 127.0.0.1:{p1} "
              f"and 127.0.0.1:{o['p2']}" + (f": {rt.short(sys_leaks[0])}" if sys_leaks else ""))
    if sys_leaks:
        e = sys_leaks[0]
        rep.check(e.get("exe", "").endswith("nginx") and isinstance(e.get("fds_total"), int)
                  and e.get("kinds", {}).get("tcp_listen") == 2,
                  f"{mode}: … logged by the nginx worker, fds_total={e.get('fds_total')} kinds={e.get('kinds')}")
        rep.check(e.get("action") == ("fixed" if mode == "fix" else "logged"),
                  f"{mode}: … action={e.get('action')}")
    blocking = [e for e in rt.named(evs, "system_blocking") if "curl" in str(e.get("command"))
                and f"127.0.0.1:{p1}" in rt.fd_details({"fds": e.get("listeners", [])})]
    waits = sorted(float(e.get("waited_s", -1)) for e in blocking)
    rep.check(bool(blocking) and waits[0] == 0,
              f"{mode}: system_blocking (command curl…, listeners 127.0.0.1:{p1}) at the start, waited_s={waits}"
              + (f": {rt.short(blocking[0])}" if blocking else ""))
    rep.check(any(w > 0 for w in waits),
              f"{mode}: system_blocking repeated while the worker stays blocked ({len(waits)} events in "
              f"{o['self_secs']}s)")


def assert_log(rep, o):
    assert_events(rep, o, "log")
    rep.check(o["held"] == 2 and o["curl_exit"] == 28,
              f"log: behaviour unchanged: curl still holds the listeners ({o['held']}/2), curl exit {o['curl_exit']}")
    rep.check(not any(e.get("action") == "fixed" for e in o["events"]), "log: no event says fixed")


def assert_fix(rep, o):
    assert_events(rep, o, "fix")
    rep.check(o["held"] == 0 and o["sh_held"] == 0,
              f"fix: curl (pid {o['curl_pid']}) and sh hold none of nginx's listening sockets "
              f"(its fds: {o.get('curl_fds')})")
    # The worker still waits for curl in system(): a single worker cannot answer its own
    # sub-request.  Documented, not asserted either way beyond reporting it.
    rep.note(f"fix: self-request still takes {o['self_secs']}s (curl exit {o['curl_exit']}): the only worker is "
             f"blocked in system(); execguard warns (system_blocking) but cannot unblock it")


def run(lib, modes=rt.MODES):
    rep = rt.Report("nginx")
    rt.which_or_fail(["nginx", "curl"])
    for m in ("ndk_http_module.so", "ngx_http_lua_module.so"):
        if not os.path.exists(os.path.join(MODDIR, m)):
            raise rt.Failure(f"{MODDIR}/{m} missing: install libnginx-mod-http-lua")
    for mode in modes:
        o = run_mode(rep, mode, lib)
        {"off": assert_off, "log": assert_log, "fix": assert_fix}[mode](rep, o)
    rep.note(f"scenario time {rep.elapsed():.1f}s")
    return rep
