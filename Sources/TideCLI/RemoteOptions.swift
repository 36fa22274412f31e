import ArgumentParser
import Foundation
import TideGit
import TideManifest

/// How Tide reaches a remote config repo. Secrets come from files or the environment, never from the command
/// line (where `ps` shows them) and never into logs or the state.
struct RemoteOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where remote repos are mirrored ($TIDE_CACHE_DIR; default: next to the state file).",
            valueName: "dir"))
    var cacheDir: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Deadline of one fetch or push, and of reading a new revision's objects in a child process "
                + "($TIDE_FETCH_TIMEOUT; default 60s).", valueName: "duration"))
    var fetchTimeout: String?

    @Option(name: .long, help: "User name for HTTP(S) or SSH ($TIDE_GIT_USERNAME).")
    var gitUsername: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A file holding the HTTP(S) password or token ($TIDE_GIT_PASSWORD_FILE; or the secret itself in "
                + "$TIDE_GIT_PASSWORD).", valueName: "file"))
    var gitPasswordFile: String?

    @Option(name: .long, help: ArgumentHelp("SSH private key file ($TIDE_SSH_KEY).", valueName: "file"))
    var sshKey: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "known_hosts file SSH servers are checked against ($TIDE_KNOWN_HOSTS; default ~/.ssh/known_hosts). An "
                + "unlisted host or a changed key is refused.", valueName: "file"))
    var knownHosts: String?

    func validate() throws {
        _ = try fetchTimeoutChecked()
    }

    var cacheDirectory: String? { cacheDir ?? environment("TIDE_CACHE_DIR") }

    var fetchTimeoutSeconds: Double { (try? fetchTimeoutChecked()) ?? 60 }

    private func fetchTimeoutChecked() throws -> Double {
        guard let text = fetchTimeout ?? environment("TIDE_FETCH_TIMEOUT") else { return 60 }
        guard let seconds = ManifestDuration.seconds(text), seconds >= 1, seconds <= 3600 else {
            throw ValidationError("--fetch-timeout: give a duration from 1s to 1h, like 60s or 2m (not '\(text)')")
        }
        return seconds
    }

    func credentials() throws -> RemoteCredentials {
        var credentials = RemoteCredentials()
        credentials.username = gitUsername ?? environment("TIDE_GIT_USERNAME")
        if let file = gitPasswordFile ?? environment("TIDE_GIT_PASSWORD_FILE") {
            credentials.password = try secret(from: file, flag: "--git-password-file")
        } else {
            credentials.password = environment("TIDE_GIT_PASSWORD")
        }
        credentials.sshKey = sshKey ?? environment("TIDE_SSH_KEY")
        if let passphrase = environment("TIDE_SSH_PASSPHRASE") { credentials.sshPassphrase = passphrase }
        let defaultKnownHosts = (NSHomeDirectory() as NSString).appendingPathComponent(".ssh/known_hosts")
        credentials.knownHosts =
            knownHosts ?? environment("TIDE_KNOWN_HOSTS")
            ?? (FileManager.default.fileExists(atPath: defaultKnownHosts) ? defaultKnownHosts : nil)
        return credentials
    }

    /// The first line of `file`, which must exist and be readable; its content is never printed.
    private func secret(from file: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ReportedFailure(message: "tide: error: \(flag): cannot read \(file)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard !line.isEmpty else { throw ReportedFailure(message: "tide: error: \(flag): \(file) is empty") }
        return line
    }
}
