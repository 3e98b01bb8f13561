# Scenario 3 probe: what the incident's tcp.py did, reduced to its failing step --
# open a socket and wait on it with select.select().
import select
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.connect(s.getsockname())
print(f"pool_probe: fd {s.fileno()}", flush=True)
try:
    r, w, x = select.select([s], [s], [], 2)
except ValueError as e:
    print(f"pool_probe: select failed: ValueError: {e}", flush=True)
    sys.exit(3)
print(f"pool_probe: select ok, writable={bool(w)}", flush=True)
sys.exit(0 if w else 2)
