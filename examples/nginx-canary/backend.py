#!/usr/bin/env python3
"""A backend for the nginx canary example: answers every GET with its version.

usage: backend.py VERSION PORT [FAIL_SWITCH]

It listens on 127.0.0.1:PORT. FAIL_SWITCH is a file: while it exists, the backend
answers every second request with HTTP 500 (the first request after the switch
is turned on succeeds, so a single health check passes; a stream of traffic sees
50 % errors). `touch FAIL_SWITCH` turns it on, `rm FAIL_SWITCH` off, at any time.
"""

import http.server
import os
import sys
import threading

version, port = sys.argv[1], int(sys.argv[2])
fail_switch = sys.argv[3] if len(sys.argv) > 3 else None
lock = threading.Lock()
failing_requests = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global failing_requests
        status = 200
        if fail_switch is not None and os.path.exists(fail_switch):
            with lock:
                n = failing_requests
                failing_requests += 1
            if n % 2 == 1:
                status = 500
        body = (version + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(f"backend {version} listening on 127.0.0.1:{port}", flush=True)
server.serve_forever()
