import Foundation
import Synchronization

/// A throwaway PostgreSQL 15 cluster on loopback for the test process: `initdb` into a temporary directory and
/// `pg_ctl start` on a free port (as the `postgres` user when running as root, since PostgreSQL refuses root),
/// started on first use and stopped (`pg_ctl stop -m immediate`) when the process exits. Each test takes a
/// database of its own with `makeDatabase()`.
public final class PostgresServer: Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    public let directory: String
    public let port: Int
    public let user = "tide"

    private static let shared = Mutex<Result<PostgresServer, FixtureError>?>(nil)
    private static let counter = Atomic<Int>(0)

    /// The cluster of this test process.
    public static func start() throws -> PostgresServer {
        try shared.withLock { shared in
            if let shared { return try shared.get() }
            let result = Result { () throws(FixtureError) -> PostgresServer in try PostgresServer() }
            shared = result
            return try result.get()
        }
    }

    /// A cluster of its own, for a test that stops, crashes or reconfigures its server (the shared one must stay
    /// up for the other tests). With `tls`, the server has `ssl = on` and a self-signed certificate for
    /// `localhost` and 127.0.0.1 (`certificate`, which is also its own authority). Stopped at exit.
    public static func startDedicated(tls: Bool = false) throws -> PostgresServer {
        try PostgresServer(
            name: "tide-pg-\(ProcessInfo.processInfo.processIdentifier)-\(counter.add(1, ordering: .relaxed).newValue)",
            tls: tls)
    }

    /// The certificate (PEM) of a dedicated server started with `tls`.
    public var certificate: String? { tls ? directory + "/server.crt" : nil }

    private let tls: Bool

    private init(name: String? = nil, tls: Bool = false) throws(FixtureError) {
        let base = FileManager.default.temporaryDirectory.path
        directory = (base as NSString).appendingPathComponent(
            name ?? "tide-pg-\(ProcessInfo.processInfo.processIdentifier)")
        self.tls = tls
        do {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            port = try freeLoopbackPort()
            if tls {
                try Self.check(
                    runProcess(
                        "/usr/bin/openssl",
                        [
                            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
                            directory + "/server.key", "-out", directory + "/server.crt",
                        ]), "openssl req")
                _ = chmod(directory + "/server.key", 0o600)
            }
            if Self.asRoot {
                try Self.check(runProcess("/usr/bin/chown", ["-R", "postgres:postgres", directory]), "chown")
            }
            try Self.check(
                Self.run("initdb", ["-D", directory + "/data", "-A", "trust", "-U", user, "--no-sync"]), "initdb")
            try start()
        } catch let error as FixtureError {
            throw error
        } catch {
            throw FixtureError("cannot start PostgreSQL: \(error)")
        }
        PostgresServer.stopAtExit(directory: directory + "/data")
    }

    /// Starts the server (again, after `stop`), on the same port and data.
    public func start() throws(FixtureError) {
        let ssl =
            tls
            ? " -c ssl=on -c ssl_cert_file=\(directory)/server.crt -c ssl_key_file=\(directory)/server.key" : ""
        // pg_ctl's server keeps whatever stdout/stderr it inherits open: no pipes for this one.
        do {
            try Self.check(
                Self.detached(
                    "pg_ctl",
                    [
                        "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                        "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off" + ssl, "start",
                    ]), "pg_ctl start")
        } catch let error as FixtureError {
            throw error
        } catch {
            throw FixtureError("cannot start PostgreSQL: \(error)")
        }
    }

    /// Stops the server: `immediate` is a crash as far as clients can tell (no goodbye to them).
    public func stop(mode: String = "immediate") throws(FixtureError) {
        do {
            try Self.check(
                Self.detached("pg_ctl", ["-D", directory + "/data", "-m", mode, "-w", "stop"]), "pg_ctl stop")
        } catch let error as FixtureError {
            throw error
        } catch {
            throw FixtureError("cannot stop PostgreSQL: \(error)")
        }
    }

    /// A new, empty database: `postgres://tide@127.0.0.1:PORT/NAME`.
    public func makeDatabase() throws -> String {
        let name = "t\(ProcessInfo.processInfo.processIdentifier)_\(Self.counter.add(1, ordering: .relaxed).newValue)"
        try Self.check(
            runProcess(Self.binaries + "/createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", user, name]),
            "createdb")
        return name
    }

    public func url(_ database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Runs SQL with psql; the output is unaligned, tuples only.
    public func psql(_ database: String, _ sql: String) throws -> ProcessOutput {
        try runProcess(
            Self.binaries + "/psql",
            [
                "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-X", "-A", "-t", "-v",
                "ON_ERROR_STOP=1", "-c", sql,
            ])
    }

    static var asRoot: Bool { getuid() == 0 }

    private static func run(_ program: String, _ arguments: [String]) throws -> ProcessOutput {
        if asRoot {
            return try runProcess("/usr/sbin/runuser", ["-u", "postgres", "--", binaries + "/" + program] + arguments)
        }
        return try runProcess(binaries + "/" + program, arguments)
    }

    /// Runs a program whose children outlive it (pg_ctl), with output to /dev/null, and waits for the program
    /// itself with waitpid (posix_spawn: Foundation's Process may never see this child exit).
    private static func detached(_ program: String, _ arguments: [String]) throws -> ProcessOutput {
        let argv =
            asRoot
            ? ["/usr/sbin/runuser", "-u", "postgres", "--", binaries + "/" + program] + arguments
            : [binaries + "/" + program] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        // The server outlives the test: it must not keep the test's connections open.
        closeInheritedDescriptors(&actions)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw FixtureError("cannot run \(argv[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return ProcessOutput(
            status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), standardOutput: "",
            standardError: "see server.log")
    }

    private static func check(_ output: ProcessOutput, _ what: String) throws(FixtureError) {
        guard output.status == 0 else { throw FixtureError("\(what) failed: \(output.combined)") }
    }

    private static let toStop = Mutex<[String]>([])

    private static func stopAtExit(directory: String) {
        let first = toStop.withLock { list in
            list.append(directory)
            return list.count == 1
        }
        guard first else { return }
        atexit {
            for directory in PostgresServer.toStop.withLock({ $0 }) {
                _ = try? PostgresServer.detached("pg_ctl", ["-D", directory, "-m", "immediate", "-w", "stop"])
                try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
            }
        }
    }
}
