# WSGI app for scenario 2: run a SIGALRM-driven program with subprocess, as the
# uWSGI incident did with hping3.  The timeout turns the hang into an answer.
# uWSGI's Python API has no core id; the worker's main thread is core 0, so the
# answer carries the thread id, whether it is the main thread, and its SigBlk.
import os
import signal
import subprocess
import threading

PROBE = os.environ["EG_PROBE"]
PROBE_ARG = os.environ.get("EG_PROBE_ARG", "200")
TIMEOUT = float(os.environ.get("EG_PROBE_TIMEOUT", "2"))


def thread_sigblk():
    tid = threading.get_native_id()
    try:
        with open(f"/proc/self/task/{tid}/status") as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


def application(environ, start_response):
    tid = threading.get_native_id()
    main = int(tid == os.getpid())
    blk = thread_sigblk()
    qs = environ.get("QUERY_STRING", "")
    if qs.startswith("hping="):  # the incident's own program: one SYN to a loopback port
        argv, timeout = ["hping3", "127.0.0.1", "-p", qs[6:], "--syn", "-c", "1"], TIMEOUT + 1
    else:
        argv, timeout = [PROBE, PROBE_ARG], TIMEOUT
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        out = r.stdout.strip().splitlines()
        if r.returncode == 0:
            verdict = "ok"
        elif r.returncode < 0:
            verdict = "killed-" + signal.Signals(-r.returncode).name
        else:
            verdict = f"exit-{r.returncode}"
        if r.returncode != 0:
            out = (r.stdout + r.stderr).strip().replace("\n", " / ").splitlines() or [""]
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed the child
        out = (e.stdout or b"").decode(errors="replace").strip().splitlines()
        verdict = "hang"
    first = out[0] if out else ""
    body = f"tid={tid} main={main} sigblk={blk} result={verdict} probe=[{first}]\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
