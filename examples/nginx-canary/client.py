#!/usr/bin/env python3
"""HTTP helpers for run.sh (python3 is there anyway for the backends; curl may not be).

usage:
  client.py free-ports N            N distinct loopback ports nothing listens on now
  client.py wait URL                wait (up to 15 s) until URL gives any HTTP answer
  client.py sample URL N [VERSION]  N GETs; print how many answered what; with VERSION,
                                    exit 1 unless every answer was HTTP 200 with VERSION
"""

import collections
import socket
import sys
import time
import urllib.error
import urllib.request


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()


def free_ports(n):
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
    for s in sockets:
        s.close()


def wait(url):
    deadline = time.monotonic() + 15
    while True:
        try:
            get(url)
            return
        except OSError as error:
            if time.monotonic() > deadline:
                sys.exit(f"{url} does not answer: {error}")
            time.sleep(0.1)


def sample(url, n, expected=None):
    seen = collections.Counter(get(url) for _ in range(n))
    for (status, body), count in sorted(seen.items()):
        print(f"  {count} × HTTP {status} {body}")
    if expected is not None and seen != {(200, expected): n}:
        sys.exit(f"expected all {n} answers to be HTTP 200 {expected}")


command = sys.argv[1] if len(sys.argv) > 1 else ""
if command == "free-ports" and len(sys.argv) == 3:
    free_ports(int(sys.argv[2]))
elif command == "wait" and len(sys.argv) == 3:
    wait(sys.argv[2])
elif command == "sample" and len(sys.argv) in (4, 5):
    sample(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) == 5 else None)
else:
    sys.exit(__doc__)
