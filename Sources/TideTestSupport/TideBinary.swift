import Foundation

/// The built `tide` executable, for end-to-end tests that run it as a user would.
public enum TideBinary {
    /// `$TIDE_BINARY`, else `tide` next to the running test bundle (SwiftPM puts both in the same products
    /// directory).
    public static var path: String {
        if let explicit = ProcessInfo.processInfo.environment["TIDE_BINARY"], !explicit.isEmpty { return explicit }
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: me).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("tide").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("tide").path
    }

    /// Runs `tide ARGS` in `directory`.
    @discardableResult
    public static func run(
        _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]
    ) throws -> ProcessOutput {
        try runProcess(path, arguments, in: directory, environment: environment)
    }

    /// The same, waiting off Swift's cooperative thread pool: a test that waits seconds for the binary must not
    /// hold one of its few threads (on two cores, two such tests would starve every timer in the process).
    @discardableResult
    public static func runDetached(
        _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]
    ) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try run(arguments, in: directory, environment: environment) })
            }
        }
    }
}
