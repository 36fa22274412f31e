import Synchronization

/// Environment variables that hold Tide's own secrets — the ones a sql executor names with
/// `password: {env: NAME}` — so that Tide reads them for its database connection and no process it starts
/// (command and plugin executors, analysis providers) inherits them.
///
/// Every manifest this process decodes adds its names; the set only grows, so a variable that was a password once
/// stays withheld even after the manifest that named it changed. An executor's own `env:` still reaches it.
public enum SecretVariables {
    /// Tide's own secrets, never passed on: the git credentials of a remote config repo.
    public static let tideOwn: Set<String> = ["TIDE_GIT_PASSWORD", "TIDE_SSH_PASSPHRASE"]

    private static let names = Mutex<Set<String>>(tideOwn)

    /// Withholds `name` from every process Tide starts from now on.
    public static func withhold(_ name: String) {
        names.withLock { _ = $0.insert(name) }
    }

    /// The names withheld so far.
    public static var withheld: Set<String> {
        names.withLock { $0 }
    }
}
