public import Foundation
public import TideManifest

/// `tide suspend SERVICE [--env E]`: Tide leaves the service's targets alone — no deployment, no rollout step, no
/// removal, no promotion into them — until `tide unsuspend`, as Flux's `suspend`. A rollout under way stays where
/// it is (traffic at its weight). Shown in status, history and metrics with who suspended it.
public struct Suspension: Sendable, Codable, Hashable {
    public var service: String
    /// Nil: every environment of the service.
    public var environment: String?
    public var actor: Actor
    public var at: Date

    public init(service: String, environment: String?, actor: Actor, at: Date) {
        self.service = service
        self.environment = environment
        self.actor = actor
        self.at = at
    }

    /// Whether it holds `target`.
    public func covers(_ target: TargetID) -> Bool {
        target.service == service && (environment == nil || environment == target.environment)
    }

    /// `checkout` or `checkout@prod`.
    public var scope: String { environment.map { "\(service)@\($0)" } ?? service }

    /// `suspended by carol at 2026-12-07T10:00:00Z: comment`.
    public var description: String {
        let formatter = ISO8601DateFormatter()
        return "suspended by \(actor) at \(formatter.string(from: at))" + (actor.comment.map { ": \($0)" } ?? "")
    }
}
