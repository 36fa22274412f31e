import Foundation

/// A receiver of http executors' actions on loopback (Python's http.server, a real process), over plain HTTP or,
/// with `certificate`/`key`, HTTPS. Every POST is recorded (path, headers, body); `GET /requests` lists them.
///
/// - `/ok…` → 200 `{"output": "0.01", "message": "done by the fake"}`; `/text` → 200 `done` (not JSON);
/// - `/flaky…` → 503 the first time it sees an `Idempotency-Key`, 200 after;
/// - `/bad` → 400 with a line of explanation; `/status/N` → status N;
/// - `/redirect` → 302 to `/ok`; `/hang` → answers after 30 s; `/stall` → a head at once, the body never ends.
///
/// Stopped (SIGKILL, then reaped) when released.
public final class ActionEndpointFixture: @unchecked Sendable {
    public let port: Int
    public let scheme: String
    private let process: Process

    static let script = """
        import http.server, json, ssl, sys, threading, time
        lock = threading.Lock()
        requests = []
        seen = set()
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def send(self, status, body, extra=None):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items(): self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            def do_GET(self):
                if self.path == "/requests":
                    with lock: return self.send(200, json.dumps(requests))
                return self.send(404, "{}")
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                p = self.path.split("?")[0]
                key = self.headers.get("Idempotency-Key", "")
                with lock:
                    requests.append({"path": p, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    first = key not in seen
                    seen.add(key)
                if p.startswith("/ok"):
                    return self.send(200, json.dumps({"output": "0.01", "message": "done by the fake"}))
                if p == "/text": return self.send(200, "done")
                if p.startswith("/flaky"):
                    return self.send(503, "busy, try later") if first else self.send(200, "{}")
                if p == "/bad": return self.send(400, "version 9.9.9 is not in the registry\\n" + "x" * 3000)
                if p.startswith("/status/"): return self.send(int(p[8:]), "{}")
                if p == "/redirect": return self.send(302, "", {"Location": "/ok"})
                if p == "/hang":
                    time.sleep(30); return self.send(200, "{}")
                if p == "/stall":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b"{")
                    self.wfile.flush()
                    time.sleep(30); return
                return self.send(404, "{}")
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        if len(sys.argv) > 2:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            s.socket = context.wrap_socket(s.socket, server_side=True)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """

    /// `certificate` and `key`: PEM files for HTTPS (see `TLSFiles`).
    public init(certificate: String? = nil, key: String? = nil) throws {
        scheme = certificate == nil ? "http" : "https"
        (process, port) = try startPythonServer(
            Self.script, [certificate, key].compactMap { $0 }, name: "the action endpoint fixture")
    }

    /// `host`: `127.0.0.1`, or `localhost` for a certificate made for that name.
    public func url(_ path: String, host: String = "127.0.0.1") -> String { "\(scheme)://\(host):\(port)\(path)" }

    /// One recorded POST.
    public struct Received: Decodable, Sendable {
        public var path: String
        /// Lower-cased names.
        public var headers: [String: String]
        public var body: String
    }

    /// Every POST so far, oldest first (read over plain HTTP only).
    public func received() async throws -> [Received] {
        let output = try await runProcess(
            "/usr/bin/python3",
            [
                "-c",
                "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())",
                url("/requests"),
            ])
        guard output.status == 0 else { throw FixtureError("GET /requests: \(output.combined)") }
        return try JSONDecoder().decode([Received].self, from: Data(output.standardOutput.utf8))
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A certificate authority and a server certificate it signed for `localhost` and 127.0.0.1 (openssl), in a
/// temporary directory.
public struct TLSFiles: Sendable {
    public let authority: String
    public let certificate: String
    public let key: String
    let directory: TemporaryDirectory

    public init() throws {
        directory = try TemporaryDirectory("tide-tls")
        authority = directory.appending("ca.pem")
        certificate = directory.appending("server.pem")
        key = directory.appending("server.key")
        let caKey = directory.appending("ca.key")
        let request = directory.appending("server.csr")
        let extensions = directory.appending("server.ext")
        try Data("subjectAltName = DNS:localhost, IP:127.0.0.1\n".utf8).write(to: URL(fileURLWithPath: extensions))
        for arguments in [
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Tide test CA", "-keyout",
                caKey,
                "-out", authority,
            ],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", request],
            [
                "x509", "-req", "-in", request, "-CA", authority, "-CAkey", caKey, "-CAcreateserial", "-days", "2",
                "-extfile", extensions, "-out", certificate,
            ],
        ] {
            let output = try runProcess("/usr/bin/openssl", arguments)
            guard output.status == 0 else { throw FixtureError("openssl \(arguments[0]): \(output.combined)") }
        }
    }
}
