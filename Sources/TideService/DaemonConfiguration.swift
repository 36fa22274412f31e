import Foundation

/// How `tide run` runs (every field has a flag and a `TIDE_*` variable; see `RunCommand`).
public struct DaemonConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests); the one bound is logged and passed to `onListening`.
    public var port: Int
    /// Seconds between polls, and the share of it (0.1: ±10 %) each wait varies by, so many daemons do not poll
    /// in step.
    public var interval: Double
    public var jitter: Double
    /// Seconds in-flight executor actions get to finish after SIGTERM before they are stopped.
    public var shutdownTimeout: Double
    /// Seconds a pass waits for another Tide process holding the state lock.
    public var lockTimeout: Double
    /// The branch to track (nil: the remote's default, or the branch HEAD points to).
    public var branch: String?
    /// Webhook secrets; nil: the webhook endpoints answer 404.
    public var webhookSecrets: WebhookSecrets?
    /// Largest webhook body taken (GitHub caps payloads at 25 MB, but push payloads are small).
    public var maximumWebhookBody: Int

    public init(
        host: String = "127.0.0.1", port: Int = 7070, interval: Double = 60, jitter: Double = 0.1,
        shutdownTimeout: Double = 30, lockTimeout: Double = 60, branch: String? = nil,
        webhookSecrets: WebhookSecrets? = nil, maximumWebhookBody: Int = 1 << 20
    ) {
        self.host = host
        self.port = port
        self.interval = interval
        self.jitter = jitter
        self.shutdownTimeout = shutdownTimeout
        self.lockTimeout = lockTimeout
        self.branch = branch
        self.webhookSecrets = webhookSecrets
        self.maximumWebhookBody = maximumWebhookBody
    }
}
