internal import CLibgit2

/// A libgit2 call failed. Carries libgit2's own message, read on the failing thread right after the call.
public struct GitError: Error, CustomStringConvertible, Sendable {
    /// The libgit2 return code (a negative `git_error_code`).
    public let code: Int32
    /// What Tide was doing, in words a user recognises ("open repository /srv/config").
    public let operation: String
    /// libgit2's message, when it left one.
    public let message: String

    public init(code: Int32, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    /// True when the object, reference or path asked for does not exist.
    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }

    public var description: String {
        message.isEmpty ? "\(operation): libgit2 error \(code)" : "\(operation): \(message)"
    }
}

/// Turns a libgit2 return code into a thrown `GitError`. Must be called on the thread that made the call,
/// before anything else touches libgit2, because the error text is thread-local and overwritten by the next call.
@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(GitError) {
    guard rc < 0 else { return }
    var message = ""
    // git_error_last() can be NULL in libgit2 1.5 when the failing path set no message.
    if let last = git_error_last(), let text = last.pointee.message {
        message = String(cString: text).trimmingTrailingNewlines()
    }
    throw GitError(code: rc, operation: operation(), message: message)
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// libgit2 must be initialised once per process before any other call; a global `let` runs this exactly once.
let libgit2Initialized: Bool = {
    git_libgit2_init() > 0
}()
