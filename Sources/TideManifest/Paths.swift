import Foundation

/// File paths as the system resolves them.
public enum Paths {
    /// `path` with symlinks (and `.`/`..`) resolved, or as it is when it does not exist (yet).
    public static func resolved(_ path: String) -> String {
        guard let pointer = realpath(path, nil) else { return path }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
