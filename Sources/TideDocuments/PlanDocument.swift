import Foundation
public import TideEngine
public import TideManifest

/// What `tide plan --json` prints (and the service answers): what the next pass would do at the branch head.
public struct PlanDocument: Encodable, Sendable {
    public var head: String
    public var revision: String?
    public var rejected: [Diagnostic]
    public var warnings: [Diagnostic]
    public var actions: [PlannedAction]
    /// Auto-promotions waiting for a bake, with when they are due.
    public var promotions: [ScheduledPromotion]
    /// Contracts and downs due or waiting, with their statements.
    public var migrations: [MigrationReportEntry]
    /// Environments a rollback pinned that no longer follow spec.version.
    public var pins: [RollbackPin]

    /// `plan`: none when the head is rejected.
    public init(resolution: Reconciler.Resolution, plan: Plan?) {
        head = resolution.head.hex
        revision = plan?.revision.hex
        rejected = resolution.rejected
        warnings = resolution.desired?.warnings ?? []
        actions = plan?.actions ?? []
        promotions = plan?.promotions ?? []
        migrations = plan?.migrations ?? []
        pins = plan?.pins ?? []
    }
}
