import ArgumentParser
import Foundation
import TideGit

/// `--by`: who a command acts for, recorded in the events it writes (approve, promote, pause, resume, abort,
/// retry). Every command resolves it the same way, so the history never says "by unknown" while git knows who
/// is at the keyboard.
struct ActorOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Who acts, for the record (default: $TIDE_USER, else git's user.name and user.email, else $USER).")
    var by: String?

    func validate() throws {
        try refuseControlCharacters(by, option: "--by")
    }

    /// `--by`, else `$TIDE_USER`, else the config repo's git user (`user.name <user.email>`, from the repo's
    /// config or the user's), else `$USER`. An empty value counts as unset.
    func who(in repository: Repository?) -> String {
        let environment = ProcessInfo.processInfo.environment
        func present(_ value: String?) -> String? {
            guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        func gitUser() -> String? {
            guard let signature = try? repository?.defaultSignature() else { return nil }
            return "\(signature.name) <\(signature.email)>"
        }
        return present(by) ?? present(environment["TIDE_USER"]) ?? present(gitUser()) ?? present(environment["USER"])
            ?? "unknown"
    }
}

/// Text people give that ends up in the event log and on other people's terminals: no control characters (an
/// escape sequence in a `--comment` would repaint the terminal of whoever reads `tide history`).
func refuseControlCharacters(_ text: String?, option: String) throws {
    guard let text, text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return }
    throw ValidationError("\(option): control characters (escape sequences, newlines) are not allowed")
}
