import Foundation
import TideManifest

#if canImport(Glibc)
    import Glibc
#endif

/// The environment of every process Tide starts for an executor (command and plugin executors, nginx's `test` and
/// `reload`, analysis `command` providers): the same whoever runs Tide and from wherever — `tide run` under
/// systemd, or an operator's `tide abort` in a shell full of personal variables (credentials among them).
///
/// It is built, never inherited: a fixed `PATH`, `LANG=C.UTF-8`, the user's `HOME`, `USER` and `LOGNAME`; the
/// variables named in `TIDE_EXECUTOR_ENV` (comma- or colon-separated) taken from Tide's own environment — never a
/// secret Tide holds (`SecretVariables`); then the executor's own `env:`, then the `TIDE_*` variables of the
/// protocol.
public struct ExecutorEnvironment: Sendable, Hashable {
    /// The names of Tide's own variables executors get too.
    public var passThrough: [String]

    /// systemd's default `PATH` for services.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public init(passThrough: [String] = []) {
        self.passThrough = passThrough
    }

    /// What this process was configured with (`TIDE_EXECUTOR_ENV`).
    public static var configured: ExecutorEnvironment {
        ExecutorEnvironment(passThrough: names(ProcessInfo.processInfo.environment["TIDE_EXECUTOR_ENV"] ?? ""))
    }

    /// `A,B:C` → `[A, B, C]` (blank entries dropped).
    public static func names(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == ":" || $0 == " " }).map(String.init).filter { !$0.isEmpty }
    }

    /// The whole environment of a process: the base, the pass-through variables, then `variables` (the
    /// executor's `env:` and the protocol's `TIDE_*`), later ones winning.
    public func environment(_ variables: [String: String]) -> [String: String] {
        var result = Self.base()
        let own = ProcessInfo.processInfo.environment
        let withheld = SecretVariables.withheld
        for name in passThrough where !withheld.contains(name) {
            if let value = own[name] { result[name] = value }
        }
        for (name, value) in variables { result[name] = value }
        return result
    }

    /// `PATH`, `LANG`, and the effective user's `HOME`, `USER` and `LOGNAME`.
    static func base() -> [String: String] {
        var result = ["PATH": defaultPath, "LANG": "C.UTF-8"]
        if let entry = getpwuid(geteuid()) {
            if let name = entry.pointee.pw_name {
                result["USER"] = String(cString: name)
                result["LOGNAME"] = String(cString: name)
            }
            if let home = entry.pointee.pw_dir { result["HOME"] = String(cString: home) }
        }
        return result
    }
}
