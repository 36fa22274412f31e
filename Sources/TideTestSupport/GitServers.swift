import Foundation

/// Starts a Python script that prints its port on the first line, and stops it (SIGKILL, then reaped) when
/// released.
public final class PythonServer: Sendable {
    public let port: Int
    private let process: BackgroundProcess
    private let directory: TemporaryDirectory

    public init(script: String, arguments: [String] = [], environment: [String: String] = [:]) throws {
        directory = try TemporaryDirectory("tide-py")
        let output = directory.appending("output")
        process = try BackgroundProcess(
            "/usr/bin/env", ["python3", "-u", "-c", script] + arguments, environment: environment, output: output)
        let deadline = Date().addingTimeInterval(10)
        var port: Int?
        while port == nil && Date() < deadline && process.isRunning {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first, text.contains("\n") { port = Int(line) }
            if port == nil { usleep(20_000) }
        }
        guard let port else {
            throw FixtureError(
                "the Python server did not start: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        }
        self.port = port
    }
}

/// git's smart HTTP protocol served by `git http-backend` (git's own CGI) behind a small Python server, which
/// asks for HTTP Basic credentials (`user` and `token`) before anything reaches git. Repositories are paths under
/// `root`: `url("config.git")`; `/moved/config.git` answers with a redirect to `/config.git`. Pushes can be held
/// (`holdPushes`) and fetched packs sent slowly (`trickleFetches`).
public final class GitHTTPServer: Sendable {
    public let server: PythonServer
    public let root: String
    public let user: String
    public let token: String

    static let script = #"""
        import base64, http.server, os, subprocess, sys, time
        root, user, token = sys.argv[1], sys.argv[2], sys.argv[3]
        hold, arrived = os.path.join(root, "push.hold"), os.path.join(root, "push.arrived")
        expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline(); return data
                        data += self.rfile.read(size); self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            def handle_any(self):
                data = self.body() if self.command == "POST" else b""
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0"); self.end_headers(); return
                path, _, query = self.path.partition("?")
                if path.startswith("/moved/"):
                    self.send_response(301); self.send_header("Location", self.path[len("/moved"):])
                    self.send_header("Content-Length", "0"); self.end_headers(); return
                if self.command == "POST" and path.endswith("/git-receive-pack") and os.path.exists(hold):
                    open(arrived, "w").close()
                    while os.path.exists(hold): time.sleep(0.05)
                env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                           QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER=user, REMOTE_ADDR="127.0.0.1",
                           CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(data)),
                           GIT_CONFIG_NOSYSTEM="1")
                if self.headers.get("Content-Encoding"): env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                if self.headers.get("Git-Protocol"): env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                out = subprocess.run(["git", "http-backend"], input=data, env=env, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                trickle = path.endswith("/git-upload-pack") and os.path.exists(os.path.join(root, "trickle"))
                status, headers = 200, []
                for line in head.decode().split("\r\n"):
                    if not line: continue
                    name, _, value = line.partition(":")
                    if name.lower() == "status": status = int(value.strip().split()[0])
                    else: headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers: self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload))); self.end_headers()
                if trickle:
                    self.wfile.write(payload[:65536]); self.wfile.flush()
                    for i in range(65536, len(payload)):
                        self.wfile.write(payload[i:i + 1]); self.wfile.flush(); time.sleep(0.1)
                    return
                self.wfile.write(payload)
            do_GET = handle_any
            do_POST = handle_any
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """#

    public init(root: String, user: String = "tide", token: String) throws {
        self.root = root
        self.user = user
        self.token = token
        server = try PythonServer(script: Self.script, arguments: [root, user, token])
    }

    public func url(_ repository: String) -> String { "http://127.0.0.1:\(server.port)/\(repository)" }

    /// Pushes that arrive from now on are held — their whole request read, nothing applied — until
    /// `releasePushes()`; `pushArrived` says when one came.
    public func holdPushes() throws {
        _ = FileManager.default.createFile(atPath: root + "/push.hold", contents: Data())
    }

    /// From now on the packs fetches ask for come slowly: 64 KiB at once, then a byte every 0.1 s; `false` ends it.
    public func trickleFetches(_ on: Bool = true) {
        if on {
            _ = FileManager.default.createFile(atPath: root + "/trickle", contents: Data())
        } else {
            try? FileManager.default.removeItem(atPath: root + "/trickle")
        }
    }

    public var pushArrived: Bool { FileManager.default.fileExists(atPath: root + "/push.arrived") }

    public func releasePushes() {
        try? FileManager.default.removeItem(atPath: root + "/push.hold")
    }
}

/// An HTTP server for the redirect tests: `record` answers every request with a Basic challenge and writes down
/// each request's `Authorization` header; `redirect` sends every request to `target` + its path; `redirect-after-auth`
/// does so only once the request carries the credentials (before that, a challenge).
public final class RedirectingServer: Sendable {
    public let server: PythonServer
    public let record: String

    static let script = #"""
        import base64, http.server, sys
        mode, target, record, expected, host = sys.argv[1:6]
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def handle_any(self):
                if self.command == "POST": self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization")
                if mode == "record":
                    with open(record, "a") as f: f.write(f"{self.command} {self.path} {auth}\n")
                if mode == "redirect" or (mode == "redirect-after-auth" and auth == expected):
                    self.send_response(302); self.send_header("Location", target + self.path)
                else:
                    self.send_response(401); self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0"); self.end_headers()
            do_GET = handle_any
            do_POST = handle_any
        s = http.server.ThreadingHTTPServer((host, 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """#

    /// `host`: the loopback address it listens on (127.0.0.2 is another host to libgit2).
    public init(
        mode: String, target: String = "", record: String, user: String = "", token: String = "",
        host: String = "127.0.0.1"
    ) throws {
        self.record = record
        let expected = "Basic " + Data("\(user):\(token)".utf8).base64EncodedString()
        server = try PythonServer(script: Self.script, arguments: [mode, target, record, expected, host])
    }

    /// What the server was sent: one line per request, "METHOD PATH AUTHORIZATION".
    public var requests: String { (try? String(contentsOfFile: record, encoding: .utf8)) ?? "" }
}

/// A TCP server that accepts every connection and never answers: a fetch from it hangs until abandoned.
public final class SilentServer: Sendable {
    public let server: PythonServer

    static let script = """
        import socket, threading
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
        print(s.getsockname()[1], flush=True)
        held = []
        while True:
            c, _ = s.accept(); held.append(c)
        """

    public init() throws {
        server = try PythonServer(script: Self.script)
    }

    public var port: Int { server.port }
}

/// A throwaway OpenSSH server (Debian's sshd) on a loopback port with a generated ed25519 host key, taking one
/// generated client key for the current user. `knownHosts` lists its real key; `wrongKnownHosts` another one.
public final class SSHServer: Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    public let clientKey: String
    public let knownHosts: String
    public let wrongKnownHosts: String
    private let process: BackgroundProcess

    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") }

    public init() throws {
        directory = try TemporaryDirectory("tide-sshd")
        let dir = directory.path
        for name in ["host", "client", "other"] {
            let result = try runProcess(
                "/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", "\(dir)/\(name)"])
            guard result.status == 0 else { throw FixtureError("ssh-keygen: \(result.standardError)") }
        }
        clientKey = "\(dir)/client"
        try FileManager.default.copyItem(atPath: "\(dir)/client.pub", toPath: "\(dir)/authorized_keys")
        let port = try freeLoopbackPort()
        self.port = port
        let user = Self.currentUser
        let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(dir)/host
            AuthorizedKeysFile \(dir)/authorized_keys
            AllowUsers \(user)
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            PidFile \(dir)/sshd.pid
            """
        try config.write(toFile: "\(dir)/sshd_config", atomically: true, encoding: .utf8)
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        func hostLine(_ key: String) throws -> String {
            let pub = try String(contentsOfFile: "\(dir)/\(key).pub", encoding: .utf8).split(separator: " ")
            return "[127.0.0.1]:\(port) \(pub[0]) \(pub[1])\n"
        }
        knownHosts = "\(dir)/known_hosts"
        wrongKnownHosts = "\(dir)/wrong_known_hosts"
        try hostLine("host").write(toFile: knownHosts, atomically: true, encoding: .utf8)
        try hostLine("other").write(toFile: wrongKnownHosts, atomically: true, encoding: .utf8)
        let process = try BackgroundProcess(
            "/usr/sbin/sshd", ["-D", "-e", "-f", "\(dir)/sshd_config"], output: "\(dir)/sshd.log")
        self.process = process
        // Ready when it accepts a connection.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.accepts(port) { return }
            usleep(50_000)
        }
        throw FixtureError("sshd did not start on port \(port)")
    }

    public var user: String { Self.currentUser }

    static var currentUser: String {
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "root" }
        return String(cString: name)
    }

    public func url(_ path: String) -> String { "ssh://\(user)@127.0.0.1:\(port)\(path)" }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

}
