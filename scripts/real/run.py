#!/usr/bin/env python3
"""Run the real-program scenarios of execguard (issue 4).

    scripts/real/run.py [--lib target/release/libexecguard.so] [--modes off,log,fix] SCENARIO...

SCENARIO: nginx | uwsgi | pool | pysubprocess | quick (= nginx uwsgi pool)
Mode "off" runs without the shim (the incident must reproduce), "log" and "fix"
preload --lib.  Exit status 0 only if every check passed.
"""

import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realtest as rt  # noqa: E402

SCENARIOS = ("nginx", "uwsgi", "pool", "pysubprocess")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.environ.get("EXECGUARD_LIB"), help="path of libexecguard.so")
    ap.add_argument("--modes", default="off,log,fix")
    ap.add_argument("--python", default=None, help="pysubprocess: the python whose test package to run")
    ap.add_argument("scenarios", nargs="+")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in rt.MODES:
            ap.error(f"unknown mode {m}")
    names = []
    for s in a.scenarios:
        names += ["nginx", "uwsgi", "pool"] if s == "quick" else [s]
    for s in names:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    if any(m != "off" for m in modes):
        if not a.lib or not os.path.exists(a.lib):
            ap.error(f"--lib {a.lib!r} does not exist (build it: cargo build --release --lib)")
        a.lib = os.path.abspath(a.lib)
    if os.geteuid() != 0:
        print("note: not root; nginx/uwsgi still run on high ports, hping3-free probes are used", file=sys.stderr)

    def on_term(sig, frame):  # let the scenarios' finally blocks stop their servers
        raise SystemExit(f"run.py: signal {sig}, stopping")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    t0 = time.monotonic()
    failed = {}
    for s in names:
        try:
            if s == "nginx":
                import scenario_nginx as m
                rep = m.run(a.lib, modes)
            elif s == "uwsgi":
                import scenario_uwsgi as m
                rep = m.run(a.lib, modes)
            elif s == "pool":
                import scenario_pool as m
                rep = m.run(a.lib, modes)
            else:
                import scenario_pysubprocess as m
                rep = m.run(a.lib, modes, a.python)
        except rt.Failure as e:
            print(f"[{s}] FAIL (aborted): {e}", flush=True)
            failed[s] = [str(e)]
            continue
        if rep.failures:
            failed[s] = rep.failures
    if not failed and not os.environ.get("EXECGUARD_REAL_KEEP"):
        rt.cleanup_tmpdirs()
    elif rt.CREATED:
        print(f"work dirs kept (logs, configs): {' '.join(rt.CREATED)}", flush=True)
    print(f"\n== {len(names) - len(failed)}/{len(names)} scenarios passed in {time.monotonic() - t0:.1f}s", flush=True)
    for s, fs in failed.items():
        print(f"== {s}: {len(fs)} failed check(s):")
        for f in fs:
            print(f"   - {f.splitlines()[0] if f else f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
