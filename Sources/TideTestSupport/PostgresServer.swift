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

    private init() throws(FixtureError) {
        let base = FileManager.default.temporaryDirectory.path
        directory = (base as NSString).appendingPathComponent("tide-pg-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            port = try freeLoopbackPort()
            if Self.asRoot {
                try Self.check(runProcess("/usr/bin/chown", ["-R", "postgres:postgres", directory]), "chown")
            }
            try Self.check(
                Self.run("initdb", ["-D", directory + "/data", "-A", "trust", "-U", user, "--no-sync"]), "initdb")
            // pg_ctl's server keeps whatever stdout/stderr it inherits open: no pipes for this one.
            try Self.check(
                Self.detached(
                    "pg_ctl",
                    [
                        "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                        "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start",
                    ]), "pg_ctl start")
        } catch let error as FixtureError {
            throw error
        } catch {
            throw FixtureError("cannot start PostgreSQL: \(error)")
        }
        PostgresServer.stopAtExit(directory: directory + "/data")
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

    /// Runs a program whose children outlive it, with output to /dev/null; waits for the program itself.
    private static func detached(_ program: String, _ arguments: [String]) throws -> ProcessOutput {
        let process = Process()
        if asRoot {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", binaries + "/" + program] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binaries + "/" + program)
            process.arguments = arguments
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return ProcessOutput(status: process.terminationStatus, standardOutput: "", standardError: "see server.log")
    }

    private static func check(_ output: ProcessOutput, _ what: String) throws(FixtureError) {
        guard output.status == 0 else { throw FixtureError("\(what) failed: \(output.combined)") }
    }

    private static let toStop = Mutex<String?>(nil)

    private static func stopAtExit(directory: String) {
        toStop.withLock { $0 = directory }
        atexit {
            guard let directory = PostgresServer.toStop.withLock({ $0 }) else { return }
            _ = try? PostgresServer.detached("pg_ctl", ["-D", directory, "-m", "immediate", "-w", "stop"])
            try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
        }
    }
}
