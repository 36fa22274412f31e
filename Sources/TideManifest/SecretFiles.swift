import Foundation
import Synchronization

/// The directories an operator allows `password: {file: PATH}` to read from (`--secret-dir`, `TIDE_SECRET_DIRS`).
///
/// A config repo names the file, and the server it sends the password to: were any path allowed, a commit could
/// read `/etc/…` or Tide's own git token and send it to a server of its choosing. So a password file must be an
/// absolute path (checked when the manifest is decoded) inside a directory the operator allowed on the command
/// line (checked when it is read, after symlinks are resolved). With no directory allowed, no file is read.
public enum SecretFiles {
    private static let directories = Mutex<[String]>([])

    /// Sets the allowed directories (each resolved to its real path; a directory that does not exist is kept as
    /// written, so it allows nothing until it does).
    public static func allow(_ paths: [String]) {
        directories.withLock { $0 = paths.map(Paths.resolved) }
    }

    public static var allowed: [String] { directories.withLock { $0 } }

    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `path`, resolved, when it is inside an allowed directory.
    public static func check(_ path: String) throws -> String {
        guard path.hasPrefix("/") else {
            throw Refused(description: "the password file '\(path)' is not an absolute path")
        }
        let resolved = Paths.resolved(path)
        let allowed = self.allowed
        guard allowed.contains(where: { resolved.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            let list = allowed.isEmpty ? "none is allowed" : "allowed: " + allowed.joined(separator: ", ")
            throw Refused(
                description: "the password file \(path) is not inside a directory allowed with --secret-dir or "
                    + "TIDE_SECRET_DIRS (\(list))")
        }
        return resolved
    }

    /// Problems with a `{file:}` path as written in a manifest: relative paths (they would be read from the repo's
    /// work tree) and `..` components are refused.
    public static func problem(with path: String) -> String? {
        guard path.hasPrefix("/") else {
            return "'\(path)' is relative; give an absolute path inside a directory the operator allows with "
                + "--secret-dir (a config repo never chooses which files Tide reads)"
        }
        if path.split(separator: "/").contains("..") { return "'\(path)' contains '..'" }
        return nil
    }
}
