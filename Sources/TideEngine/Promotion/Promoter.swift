public import Foundation
public import TideGit
public import TideManifest
import TideState

/// Moves versions between environments: answers the gates and approvals a target waits on, writes promotions
/// (`tide promote`, and automatic ones after a pass) and schedules the ones not due yet.
public struct Promoter: EngineCollaborator {
    let context: EngineContext
    let resolver: RevisionResolver
    let branchWriter: BranchWriter
}

/// A version written into the config repo as an environment's version.
public struct Promotion: Sendable, Hashable, Codable {
    public var service: String
    public var environment: String
    public var version: String
    /// The environments it was taken from.
    public var from: [String]
    /// The commit that made the change.
    public var commit: ObjectID
    public var file: String
    public var workTreeUpdated: Bool
}

/// An auto-promotion that waits for a bake to end.
public struct ScheduledPromotion: Sendable, Hashable, Codable {
    public var service: String
    public var environment: String
    public var version: String
    /// The environments it is taken from.
    public var from: [String]
    /// When the version has baked in every one of them.
    public var due: Date
}

/// Promotion failures.
public enum PromotionError: Error, CustomStringConvertible, Sendable {
    case unknownTarget(service: String, environment: String)
    case noVersion(service: String, environment: String, reason: String)
    case rejectedHead(ObjectID)
    /// The commit would not validate (nothing was written).
    case wouldBeInvalid(service: String, environment: String, version: String, diagnostics: [Diagnostic])

    public var description: String {
        switch self {
        case .unknownTarget(let service, let environment):
            "\(service) does not run in \(environment); add it to spec.environments first"
        case .noVersion(let service, let environment, let reason):
            "cannot tell which version of \(service) to promote to \(environment): \(reason); name it with --version"
        case .rejectedHead(let head):
            "the branch head \(head.short) is rejected; fix it before promoting"
        case .wouldBeInvalid(let service, let environment, let version, let diagnostics):
            "promoting \(service) \(version) to \(environment) would write manifests that do not validate, so "
                + "nothing was written:\n" + diagnostics.map(\.description).joined(separator: "\n")
        }
    }
}

extension Promoter {
    /// Writes `version` (default: what the service runs in the environments `environment` requires) as the
    /// version of `service` in `environment`, as a commit on the tracked branch. The deployment itself comes with
    /// the next reconcile, through the environment's gates.
    public func promote(service: String, to environment: String, version: String?) async throws -> Promotion {
        // Someone pushed meanwhile: the promotion is made again on their head (which may already ask for it).
        try await branchWriter.rebuildingOnMove {
            try await promoteOnce(service: service, to: environment, version: version)
        }
    }

    private func promoteOnce(service: String, to environment: String, version: String?) async throws -> Promotion {
        let resolution = try await resolver.resolve(record: false)
        guard resolution.rejected.isEmpty, let desired = resolution.desired else {
            throw PromotionError.rejectedHead(resolution.head)
        }
        guard desired.target(TargetID(service: service, environment: environment)) != nil,
            let manifest = desired.environments[environment]
        else { throw PromotionError.unknownTarget(service: service, environment: environment) }
        let upstream = manifest.requires.filter { desired.services[service]?.environments[$0] != nil }
        let chosen: String
        if let version {
            chosen = version
        } else {
            var versions: Set<String> = []
            for required in upstream {
                let live = try await store.liveTarget(TargetID(service: service, environment: required))
                guard let live, live.phase == .healthy, let running = live.version else {
                    throw PromotionError.noVersion(
                        service: service, environment: environment, reason: "it is not healthy in \(required)")
                }
                versions.insert(running)
            }
            guard versions.count == 1, let only = versions.first else {
                throw PromotionError.noVersion(
                    service: service, environment: environment,
                    reason: upstream.isEmpty
                        ? "\(environment) requires no environment to take it from"
                        : "\(upstream.joined(separator: ", ")) run different versions")
            }
            chosen = only
        }
        return try await writePromotion(
            service: service, environment: environment, version: chosen, from: upstream, desired: desired,
            parent: resolution.head)
    }

    /// Auto-promotions due now: for every environment with `promotion: auto`, each service whose required
    /// environments all run one version healthy, baked for the environment's `bake`, that the environment does not
    /// want yet and never ran. Each becomes a commit; the deployments follow in the next pass. Returns what it
    /// wrote and what waits for a bake to end (so `--watch` and `tide plan` can say when).
    func autoPromote(
        desired: DesiredState, head: ObjectID
    ) async throws -> (written: [Promotion], scheduled: [ScheduledPromotion]) {
        guard desired.revision == head else { return ([], []) }
        let now = clock.now()
        var parent = head
        var written: [Promotion] = []
        var scheduled: [ScheduledPromotion] = []
        for candidate in try await scheduledPromotions(desired: desired) {
            guard candidate.due <= now else {
                scheduled.append(candidate)
                continue
            }
            do {
                let base = parent
                let promotion = try await gitWrites.run {
                    try await writePromotion(
                        service: candidate.service, environment: candidate.environment, version: candidate.version,
                        from: candidate.from, desired: desired, parent: base)
                }
                parent = promotion.commit
                written.append(promotion)
            } catch let error as PromotionError {
                // Recorded, never written: the other promotions go on.
                try await journal.commit(
                    StateWrite(events: [
                        Event(
                            time: now, kind: .reconcileError,
                            target: TargetID(service: candidate.service, environment: candidate.environment),
                            version: candidate.version, message: "auto-promotion not written: \(error)")
                    ]))
            } catch is BranchMoved {
                break  // someone pushed meanwhile: the next pass promotes from their head, if it still should
            } catch is PublishFailed {
                // The push failed (the remote is down, or declined it): the local branch is back where it was; the
                // next pass tries again. The publisher recorded why as an event.
                break
            }
        }
        return (written, scheduled)
    }

    /// Every auto-promotion the live state calls for, with when it is due: for each environment with
    /// `promotion: auto`, a service whose required environments all run one version healthy that the environment
    /// does not want yet and never ran; due once that version has baked in each of them (a hotfix does not bake).
    public func scheduledPromotions(desired: DesiredState) async throws -> [ScheduledPromotion] {
        var result: [ScheduledPromotion] = []
        let suspensions = try await store.suspensions()
        for environment in desired.environments.values.sorted(by: { $0.name < $1.name })
        where environment.promotion == .auto && !environment.requires.isEmpty {
            for target in desired.targets where target.id.environment == environment.name {
                // Nothing is promoted into a suspended target (its deployment would wait anyway).
                if suspensions.contains(where: { $0.covers(target.id) }) { continue }
                let service = target.id.service
                let upstream = environment.requires.filter { desired.services[service]?.environments[$0] != nil }
                guard !upstream.isEmpty else { continue }
                var candidate: String?
                var due = Date.distantPast
                var ready = true
                for required in upstream {
                    let id = TargetID(service: service, environment: required)
                    guard let live = try await store.liveTarget(id), live.phase == .healthy, let running = live.version,
                        candidate == nil || candidate == running
                    else {
                        ready = false
                        break
                    }
                    candidate = running
                    let deployment = try await store.deployments(DeploymentQuery(target: id, limit: 50))
                        .first { $0.succeeded && $0.version == running }
                    if deployment?.classification != .hotfix {
                        let bakedSince = deployment?.finishedAt ?? live.updatedAt
                        due = max(due, bakedSince.addingTimeInterval(environment.bake))
                    }
                }
                guard ready, let version = candidate, version != target.version else { continue }
                let ranBefore = try await store.deployments(DeploymentQuery(target: target.id, limit: 500))
                    .contains { $0.succeeded && $0.version == version }
                guard !ranBefore else { continue }
                result.append(
                    ScheduledPromotion(
                        service: service, environment: environment.name, version: version, from: upstream, due: due))
            }
        }
        return result
    }

    private func writePromotion(
        service: String, environment: String, version: String, from upstream: [String], desired: DesiredState,
        parent: ObjectID
    ) async throws -> Promotion {
        let file = desired.services[service]!.location.file  // callers checked the service exists
        let blob = try repository.files(at: parent, under: "").first { $0.path == file }
        guard let blob else { throw PromotionError.unknownTarget(service: service, environment: environment) }
        let text = String(decoding: try repository.blob(blob.blob), as: UTF8.self)
        let edited = try ManifestEditor.settingVersion(
            in: text, file: file, service: service, environment: environment, version: version)
        let branchName = try trackedBranch()
        let origin = upstream.isEmpty ? "" : " from \(upstream.joined(separator: ", "))"
        let message = """
            Promote \(service) \(version) to \(environment)

            \(version) passed the gates of \(environment)\(origin).

            Tide-Promotion: \(service) \(environment) \(version)
            Tide-Actor: \(Reconciler.acting.trailer)

            """
        // A promotion commit is checked before the branch moves: Tide never writes a revision it would reject.
        let candidate = try repository.makeFileCommit(
            path: file, contents: Array(edited.utf8), parent: parent, message: message)
        do {
            _ = try loader.load(from: GitCommitSource(repository: repository, commit: candidate, root: root))
        } catch let error as ManifestError {
            throw PromotionError.wouldBeInvalid(
                service: service, environment: environment, version: version, diagnostics: error.diagnostics)
        }
        let synced = try await branchWriter.moveBranch(
            branchName, from: parent, to: candidate, reason: String(message.prefix(60)))
        let written = Repository.FileCommit(commit: candidate, workTreeUpdated: synced)
        let now = clock.now()
        try await journal.commit(
            StateWrite(events: [
                Event(
                    time: now, kind: .promotionCommitted, target: TargetID(service: service, environment: environment),
                    revision: written.commit, version: version,
                    message: "promoted \(version)\(origin) in \(written.commit.short)",
                    details: .object(["file": .string(file), "from": .array(upstream.map { .string($0) })]))
            ]))
        return Promotion(
            service: service, environment: environment, version: version, from: upstream, commit: written.commit,
            file: file, workTreeUpdated: written.workTreeUpdated)
    }
}
