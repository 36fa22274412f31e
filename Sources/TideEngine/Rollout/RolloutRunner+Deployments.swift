import Foundation
import TideGit
import TideManifest
import TideState

/// The deployment ledger DORA reads: one record per finished rollout, and the marks later deployments leave on
/// earlier ones (failed: rolled back, reverted, followed by a hotfix; recovered).
extension RolloutRunner {
    static func deploymentID(_ target: TargetID, _ rollout: Rollout) -> String {
        "\(target.service).\(target.environment).\(rollout.revision.short).\(Int(rollout.startedAt.timeIntervalSince1970))"
    }

    /// A rollout that failed: a deployment that needed intervention from the moment it failed.
    func failedDeployment(
        target: TargetID, rollout: Rollout, desired: DesiredState, at: Date, message: String
    ) -> DeploymentRecord {
        DeploymentRecord(
            id: Self.deploymentID(target, rollout), target: target,
            production: desired.environments[target.environment]?.production ?? false, revision: rollout.revision,
            version: rollout.version, previousVersion: rollout.previousVersion, classification: rollout.classification,
            startedAt: rollout.startedAt, finishedAt: at, succeeded: false, failed: true, failureReason: message,
            failedAt: at)
    }

    /// A rollout that completed, first in the result, followed by the earlier deployments of the target it marks:
    /// the one it undoes (the deployment that shipped a reverted commit; for a rollback to an earlier version or a
    /// hotfix, the deployment it replaces) is failed, and every failed one not yet recovered is recovered now.
    func succeededDeployment(
        target: DesiredTarget, rollout: Rollout, liveRevision: ObjectID?, desired: DesiredState, at: Date
    ) async throws -> [DeploymentRecord] {
        var commits = try repository.commits(
            from: rollout.revision, excluding: liveRevision, touching: [target.location.file], limit: 10_000)
        // The live revision is gone (history rewritten): the commits since it cannot be told, so lead time counts
        // the deployed commit alone rather than the whole history.
        if commits.isEmpty, let liveRevision, !repository.contains(liveRevision),
            let deployed = try? repository.commit(rollout.revision)
        {
            commits = [deployed]
        }
        let record = DeploymentRecord(
            id: Self.deploymentID(target.id, rollout), target: target.id,
            production: desired.environments[target.id.environment]?.production ?? false, revision: rollout.revision,
            version: rollout.version, previousVersion: rollout.previousVersion, classification: rollout.classification,
            startedAt: rollout.startedAt, finishedAt: at, succeeded: true,
            changes: commits.map { DeploymentRecord.Change(commit: $0.id, committedAt: $0.committer.time) })

        var earlier = try await store.deployments(DeploymentQuery(target: target.id, limit: 200))
            .filter { $0.id != record.id }
        var touched: Set<String> = []

        var undone: Int?
        var reason = ""
        if let reverted = rollout.revertedCommit {
            undone = earlier.firstIndex { $0.succeeded && $0.changes.contains { $0.commit == reverted } }
            reason = "reverted by \(rollout.revision.short)"
        } else if rollout.classification == .rollback {
            undone = earlier.firstIndex { $0.succeeded }
            reason = "rolled back to \(rollout.version)"
        } else if rollout.classification == .hotfix {
            undone = earlier.firstIndex { $0.succeeded }
            reason = "followed by hotfix \(rollout.version)"
        }
        if let undone, !earlier[undone].failed {
            earlier[undone].failed = true
            earlier[undone].failureReason = reason
            touched.insert(earlier[undone].id)
        }
        for index in earlier.indices where earlier[index].failed && earlier[index].recoveredAt == nil {
            earlier[index].recoveredAt = at
            touched.insert(earlier[index].id)
        }
        return [record] + earlier.filter { touched.contains($0.id) }
    }
}
