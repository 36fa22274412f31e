import ArgumentParser
import Foundation
import TideState

/// Who a command acts for: the operating-system user running it (and the user behind sudo), never a name typed
/// on the command line. `--by` and `--comment` are kept as a comment on the record (`--by` used to name the
/// actor; it cannot impersonate anyone any more).
struct ActorOptions: ParsableArguments {
    @Option(name: .long, help: "Whom you act for, kept as a comment (the record names the user running tide).")
    var by: String?

    @Option(name: .long, help: "Why, for the record.")
    var comment: String?

    func validate() throws {
        try refuseControlCharacters(by, option: "--by")
        try refuseControlCharacters(comment, option: "--comment")
        if let comment, comment.utf8.count > Self.commentLimit {
            throw ValidationError("--comment: at most \(Self.commentLimit) bytes (this one has \(comment.utf8.count))")
        }
        if let by, by.utf8.count > 200 { throw ValidationError("--by: at most 200 bytes") }
    }

    /// The longest comment kept (a record is read by people, and every one is kept for good).
    static let commentLimit = 2000

    /// The operating-system user running this command, with the comment.
    var actor: Actor {
        let text = [by.map { "for \($0)" }, comment].compactMap { $0 }.joined(separator: "; ")
        return Actor.current(comment: text.isEmpty ? nil : text)
    }
}

/// Text people give that ends up in the event log and on other people's terminals: no control characters (an
/// escape sequence in a `--comment` would repaint the terminal of whoever reads `tide history`).
func refuseControlCharacters(_ text: String?, option: String) throws {
    guard let text, text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return }
    throw ValidationError("\(option): control characters (escape sequences, newlines) are not allowed")
}
