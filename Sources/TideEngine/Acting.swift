public import TideState

/// Who asked for what Tide does now, for the `Tide-Actor:` trailer of the commits it writes: a person through an
/// operator verb (`carol (uid 1001) via tide rollback`), or Tide on its own (`tide via automatic rollback`).
/// Set for the length of an operator verb with `Reconciler.$acting.withValue(…)`; a pass Tide runs by itself
/// keeps the default.
public struct Acting: Sendable, Hashable {
    public var actor: Actor
    /// What did it: `tide rollback`, `tide abort`, `automatic rollback`, `promotion: auto`.
    public var what: String

    public init(_ actor: Actor, _ what: String) {
        self.actor = actor
        self.what = what
    }

    /// The trailer's value.
    public var trailer: String { actor.trailer(what) }
}

extension Reconciler {
    /// Who is acting in this task (Tide itself unless an operator verb says otherwise).
    @TaskLocal public static var acting = Acting(.tide, "a reconcile pass (automatic rollback or promotion)")
}
