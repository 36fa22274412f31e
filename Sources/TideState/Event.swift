public import Foundation
public import TideGit
public import TideManifest

/// One entry of the append-only event log.
public struct Event: Sendable, Codable, Hashable {
    /// Event types; the raw values are part of `tide history --json`.
    /// They live in TideManifest, where a manifest names them (what a notification is sent for).
    public typealias Kind = EventKind

    /// Assigned by the store, increasing.
    public var id: Int64?
    public var time: Date
    public var kind: Kind
    public var target: TargetID?
    public var revision: ObjectID?
    public var version: String?
    public var previousVersion: String?
    public var classification: ChangeClass?
    public var message: String
    /// Extra structured facts (action id, exit status, stderr, diagnostics).
    public var details: JSONValue?

    public init(
        id: Int64? = nil, time: Date, kind: Kind, target: TargetID? = nil, revision: ObjectID? = nil,
        version: String? = nil, previousVersion: String? = nil, classification: ChangeClass? = nil,
        message: String, details: JSONValue? = nil
    ) {
        self.id = id
        self.time = time
        self.kind = kind
        self.target = target
        self.revision = revision
        self.version = version
        self.previousVersion = previousVersion
        self.classification = classification
        self.message = message
        self.details = details
    }
}

/// Which events to read, newest first.
public struct EventQuery: Sendable, Hashable {
    public var service: String?
    public var environment: String?
    public var kinds: [Event.Kind]?
    public var limit: Int

    public init(service: String? = nil, environment: String? = nil, kinds: [Event.Kind]? = nil, limit: Int = 100) {
        self.service = service
        self.environment = environment
        self.kinds = kinds
        self.limit = limit
    }

    public func matches(_ event: Event) -> Bool {
        if let service, event.target?.service != service { return false }
        if let environment, event.target?.environment != environment { return false }
        if let kinds, !kinds.contains(event.kind) { return false }
        return true
    }
}
