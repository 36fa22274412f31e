import Foundation

/// A small HTTP server on loopback (Python's http.server, started as a real process) for analysis providers:
///
/// - `/ok…` → 200; `/flaky…` → 500 for 3 of every 10 requests (in arrival order), 200 otherwise;
/// - `/json` → `{"errors": 3, "total": 100, "ok": true}`; `/number` → `0.004`; `/empty` → an empty body;
/// - `/status/N` → status N; `/slow` → answers after 15 s (long past any timeout, even on a loaded machine); `/count` → how many requests `/flaky` has had;
/// - `/trickle` → its head at once, then its 100-byte body one byte every 0.2 s (20 s in all).
///
/// Stopped (SIGKILL, then reaped) when released.
public final class HTTPFixture: @unchecked Sendable {
    public let port: Int
    private let process: Process

    static let script = """
        import http.server, json, sys, threading, time
        lock = threading.Lock()
        count = [0]
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            def do_GET(self):
                p = self.path.split("?")[0]
                if p.startswith("/ok"): return self.send(200, "ok")
                if p.startswith("/flaky"):
                    with lock:
                        n = count[0]; count[0] += 1
                    return self.send(500 if n % 10 < 3 else 200, "")
                if p == "/count": return self.send(200, str(count[0]))
                if p == "/json": return self.send(200, json.dumps({"errors": 3, "total": 100, "ok": True}))
                if p == "/number": return self.send(200, "0.004")
                if p == "/empty": return self.send(200, "")
                if p == "/slow":
                    time.sleep(15); return self.send(200, "1")
                if p == "/trickle":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        self.wfile.write(b"1"); self.wfile.flush(); time.sleep(0.2)
                    return
                if p.startswith("/status/"): return self.send(int(p[8:]), "{}")
                return self.send(404, "{}")
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """

    public init() throws {
        (process, port) = try startPythonServer(Self.script, name: "the HTTP fixture")
    }

    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// Runs `python3 -c script arguments…` and reads the port it listens on from its first line of output (printed once
/// it listens). Throws, the process stopped, when none comes within 20 s.
func startPythonServer(_ script: String, _ arguments: [String] = [], name: String) throws -> (Process, Int) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", script] + arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    var line = Data()
    let deadline = Date().addingTimeInterval(20)
    while !line.contains(0x0A) && Date() < deadline {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line.append(chunk)
    }
    guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    else {
        process.terminate()
        process.waitUntilExit()
        throw FixtureError("\(name) did not start")
    }
    return (process, port)
}

/// A loopback TCP port nothing listens on right now (the kernel's pick for port 0).
public func freeLoopbackPort() throws -> Int {
    let output = try runProcess(
        "/usr/bin/python3",
        ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
    guard let port = Int(output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw FixtureError("no free port: \(output.combined)")
    }
    return port
}
