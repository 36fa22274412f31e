import Foundation
import TideGit
public import TideManifest
public import TideState

/// Why an approval cannot be recorded.
public struct ApprovalError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

extension Promoter {
    /// What `tide approve` recorded.
    public struct Approval: Sendable {
        public var target: TargetID
        public var version: String
        public var configDigest: String
        public var executorDigest: String
        /// Set when the branch head asks for another version there: the approval waits until git asks for it.
        public var note: String?
    }

    /// Records an approval of `service` in `environment` for exactly what the branch head asks to run there — its
    /// version (or `version`, when given), its config digest and its executor — so a later change of any of them
    /// needs an approval of its own.
    ///
    /// What must never happen: an approval of a service or environment that does not exist (a typo recorded as a
    /// sign-off); an approval read from a head that does not validate; an approval that names no config (it would
    /// approve whatever config comes with the version later).
    public func approve(service: String, environment: String, version: String?, by actor: Actor) async throws
        -> Approval
    {
        let resolution = try await resolver.resolve(record: false)
        guard resolution.rejected.isEmpty, let desired = resolution.desired else {
            throw ApprovalError(
                description: "\(resolution.head.short) does not validate (\(resolution.rejected.count) problem(s)): "
                    + "fix it before approving what it asks for")
        }
        let id = TargetID(service: service, environment: environment)
        guard let target = desired.target(id) else {
            let known =
                desired.services[service] == nil
                ? "no service '\(service)'" : "\(service) does not run in \(environment)"
            throw ApprovalError(description: "\(known) at \(resolution.head.short): nothing to approve")
        }
        let approved = version ?? target.version
        let note =
            approved == target.version
            ? nil
            : "\(resolution.head.short) asks for \(target.version) in \(environment); the approval of \(approved) "
                + "(with the config it asks for now, \(target.configDigest.prefix(8))) waits until git asks for it"
        var details = actor.details
        details["configDigest"] = .string(target.configDigest)
        details["executorDigest"] = .string(target.executorDigest)
        details["revision"] = .string(resolution.head.hex)
        try await journal.commit(
            StateWrite(events: [
                Event(
                    time: clock.now(), kind: .approvalGranted, target: id, revision: resolution.head,
                    version: approved,
                    message: "\(approved) (config \(target.configDigest.prefix(8))) approved by \(actor)"
                        + (actor.comment.map { ": \($0)" } ?? ""),
                    details: .object(details))
            ]))
        return Approval(
            target: id, version: approved, configDigest: target.configDigest, executorDigest: target.executorDigest,
            note: note)
    }
}
