import Foundation

/// A real `tide run` process on a free loopback port, for end-to-end tests of the service. Its log goes to a file
/// (`log()`); it is killed when released if a test did not stop it.
public final class TideDaemon: Sendable {
    public let port: Int
    public let logPath: String
    private let process: BackgroundProcess

    /// Starts `tide run ARGS --listen 127.0.0.1:PORT` in `directory` and waits until `/healthz` answers.
    public init(
        _ arguments: [String], in directory: String, environment: [String: String] = [:], logDirectory: String
    ) async throws {
        port = try freeLoopbackPort()
        logPath = (logDirectory as NSString).appendingPathComponent("tide-run-\(port).log")
        process = try BackgroundProcess(
            TideBinary.path, ["run", "--listen", "127.0.0.1:\(port)"] + arguments, in: directory,
            environment: environment, output: logPath)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let response = try? await get("/healthz"), response.status == 200 { return }
            if let status = process.exitStatus {
                throw FixtureError("tide run exited (\(status)) before serving: \(log())")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("tide run did not answer /healthz within 30 s: \(log())")
    }

    public var pid: Int32 { process.pid }

    public func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: String
    }

    /// A request through curl (a real HTTP client, no shell).
    public func request(
        _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil
    ) async throws -> Response {
        var arguments = ["-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", "30"]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        var bodyFile: String?
        if let body {
            let file = NSTemporaryDirectory() + "/tide-body-\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: file, contents: Data(body))
            bodyFile = file
            arguments += ["--data-binary", "@\(file)"]
        }
        defer { bodyFile.map { try? FileManager.default.removeItem(atPath: $0) } }
        arguments.append("http://127.0.0.1:\(port)\(path)")
        let curlArguments = arguments
        let output = try await detached { try runProcess("/usr/bin/curl", curlArguments) }
        var lines = output.standardOutput.components(separatedBy: "\n")
        guard let code = lines.popLast().flatMap({ Int($0) }), code > 0 else {
            throw FixtureError("curl \(path): \(output.standardError)")
        }
        return Response(status: code, body: lines.joined(separator: "\n"))
    }

    public func get(_ path: String) async throws -> Response { try await request("GET", path) }

    /// Sends `signal` and waits (off the cooperative pool) for the process to exit; returns its exit status, or
    /// nil if it was still running after `timeout` seconds.
    /// Waits until the process exits by itself (its status) or `timeout` seconds pass (nil).
    public func waitForExit(timeout: Double) async -> Int32? {
        await process.waitForExit(timeout: timeout)
    }

    public func stop(signal: Int32 = 15, timeout: Double = 60) async -> Int32? {
        process.signal(signal)
        return await process.waitForExit(timeout: timeout)
    }

    /// Waits until the log has a line containing `text` (true) or `timeout` seconds pass (false).
    public func waitForLog(_ text: String, count: Int = 1, timeout: Double = 30) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log().components(separatedBy: text).count - 1 >= count { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}

/// Runs blocking work on a global queue, off Swift's cooperative thread pool.
public func detached<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
