import Foundation
import TideExecutors
import TideGit
import TideManifest
public import TideState

/// A person's decisions about migrations that Tide never takes by itself: release another install's use, adopt
/// a migration whose owner is gone, apply one again on a database whose history went backwards.
extension MigrationCoordinator {
    /// The database of `environment` that has `name` in its history (or, for `reapply`, that its executor
    /// reaches), with its status: the caller closes the database.
    private func migrationDatabase(
        _ name: String, environment: String, desired: DesiredState
    ) async throws -> (group: DatabaseGroup, database: any MigrationDatabase, status: MigrationStatus) {
        let live = try await store.liveTargets()
        for entry in try await decideMigrations(desired: desired, live: live, now: clock.now()) {
            guard entry.group.environments.contains(environment), let database = entry.database else {
                if let database = entry.database { Task { await database.close() } }
                continue
            }
            let reaches = desired.migrations[name].map { entry.group.names.contains($0.executor) } ?? false
            guard entry.statuses[name] != nil || reaches else {
                Task { await database.close() }
                continue
            }
            return (entry.group, database, entry.statuses[name] ?? MigrationStatus())
        }
        throw MigrationCommandError(description: "no database of \(environment) has migration \(name)")
    }

    private func desiredForCommand() async throws -> DesiredState {
        guard let desired = try await resolver.resolve(record: false).desired else {
            throw MigrationCommandError(description: "no valid desired state to read the databases from")
        }
        return desired
    }

    /// `tide migrations release NAME --env E --install ID`: the owner's person says another install's use no
    /// longer holds the contract or the down (that install is gone, or will never run a version without it).
    public func migrationRelease(
        name: String, environment: String, install: String, by actor: Actor
    ) async throws -> String {
        try await store.withExclusiveLock(timeout: 60) {
            let desired = try await desiredForCommand()
            let (group, database, status) = try await migrationDatabase(
                name, environment: environment, desired: desired)
            defer { Task { await database.close() } }
            let owner = try await migrationOwner()
            guard owns(name, status, owner: owner, desired: desired) else {
                throw MigrationCommandError(
                    description: "\(name) in \(group.label) belongs to another install (\(status.owner ?? "?")); only "
                        + "its owner releases the uses that hold it")
            }
            guard let match = status.users.keys.first(where: { $0 == install || $0.contains(install) }) else {
                throw MigrationCommandError(
                    description: "no install named \(install) uses \(name) in \(group.label); "
                        + (status.users.isEmpty
                            ? "none does" : "these do: " + status.users.keys.sorted().joined(separator: "; ")))
            }
            let row = MigrationRecord(
                name: name, phase: .released, checksum: "-",
                revision: try repository.resolveCommit(branch: trackedBranch()).hex, appliedAt: clock.now(),
                durationMilliseconds: 0, owner: owner.record(environment: group.label),
                detail: MigrationRecord.Detail(install: match))
            _ = try await database.apply(MigrationRun([]), record: row, due: { _ in true })
            try await journal.commit(
                StateWrite(events: [
                    Event(
                        time: clock.now(), kind: .migrationApplied,
                        message: "migration \(name) in \(group.label): the use of \(match) released by \(actor)",
                        details: .object(actor.details))
                ]))
            return "\(name) in \(group.label): the use of \(match) no longer holds its contract or its down"
        }
    }

    /// `tide migrations adopt NAME --env E --from ID`: a migration whose owner is gone (a fresh state, a renamed
    /// branch) becomes this install's. Refused while the old owner looks alive: it wrote to the history within
    /// `quiet` seconds.
    public func migrationAdopt(
        name: String, environment: String, from old: String, by actor: Actor, quiet: Double = 3600
    ) async throws -> String {
        try await store.withExclusiveLock(timeout: 60) {
            let desired = try await desiredForCommand()
            let (group, database, status) = try await migrationDatabase(
                name, environment: environment, desired: desired)
            defer { Task { await database.close() } }
            guard status.isApplied, let current = status.owner else {
                throw MigrationCommandError(description: "\(name) is not applied in \(group.label): nothing to adopt")
            }
            let owner = try await migrationOwner()
            if owner.owns(current) {
                throw MigrationCommandError(description: "\(name) in \(group.label) is this install's already")
            }
            let install = MigrationRecord.install(current)
            guard install == old || install.contains(old) else {
                throw MigrationCommandError(
                    description: "\(name) in \(group.label) belongs to \(install), not to \(old); adopt names the "
                        + "owner `tide migrations` shows")
            }
            if let last = status.lastWritten[install], clock.now().timeIntervalSince(last) < quiet {
                throw MigrationCommandError(
                    description: "\(install) wrote to \(name)'s history at \(GateEvaluator.format(last)), within the "
                        + "last \(ManifestDuration.format(quiet)): it may still be running. Stop it, then adopt once "
                        + "it has been quiet that long")
            }
            let row = MigrationRecord(
                name: name, phase: .adopted, checksum: "-",
                revision: try repository.resolveCommit(branch: trackedBranch()).hex, appliedAt: clock.now(),
                durationMilliseconds: 0, owner: owner.record(environment: group.label),
                detail: MigrationRecord.Detail(install: install))
            _ = try await database.apply(
                MigrationRun([]), record: row,
                due: { records in MigrationStatus.fold(records)[name]?.owner == status.owner })
            try await journal.commit(
                StateWrite(events: [
                    Event(
                        time: clock.now(), kind: .migrationApplied,
                        message: "migration \(name) in \(group.label) adopted from \(install) by \(actor)",
                        details: .object(actor.details))
                ]))
            return "\(name) in \(group.label) is this install's now (it was \(install)'s)"
        }
    }

    /// `tide migrations reapply NAME --env E`: expand (and backfill) a migration again on a database whose
    /// history does not have it while this install's record says a running version needs it (the database was
    /// replaced or restored) — a person's decision, after checking the database.
    public func migrationReapply(
        name: String, environment: String, by actor: Actor, confirmed: Bool
    ) async throws -> String {
        try await store.withExclusiveLock(timeout: 60) {
            let desired = try await desiredForCommand()
            guard let migration = desired.migrations[name] else {
                throw MigrationCommandError(description: "migration \(name) is not in desired state")
            }
            let (group, database, status) = try await migrationDatabase(
                name, environment: environment, desired: desired)
            defer { Task { await database.close() } }
            guard !status.isApplied else {
                throw MigrationCommandError(
                    description: "\(name) is applied in \(group.label) (\(status.phaseName)): nothing to reapply")
            }
            let phases = [MigrationManifest.PhaseName.expand, .backfill].compactMap { phaseName in
                migration.phase(phaseName).map { (phaseName, $0) }
            }
            guard confirmed else {
                throw MigrationCommandError(
                    description: "nothing done: in \(group.label) this would run\n"
                        + phases.flatMap { $0.1.up.map { "    \($0)" } }.joined(separator: "\n")
                        + "\non a database whose history has no \(name). Run again with --yes to apply it")
            }
            let owner = try await migrationOwner()
            let revision = try repository.resolveCommit(branch: trackedBranch())
            for (phaseName, phase) in phases {
                let record = MigrationRecord(
                    name: name, phase: phaseName == .expand ? .expand : .backfill, checksum: phase.checksum,
                    revision: revision.hex, appliedAt: clock.now(), durationMilliseconds: 0,
                    down: phaseName == .expand ? phase.down : [], owner: owner.record(environment: environment))
                do {
                    _ = try await database.apply(
                        phase, record: record,
                        due: { records in MigrationStatus.fold(records)[name]?.record(phaseName) == nil })
                } catch {
                    throw MigrationCommandError(description: "\(name): \(phaseName.rawValue) failed: \(error)")
                }
            }
            try await journal.commit(
                StateWrite(events: [
                    Event(
                        time: clock.now(), kind: .migrationApplied, revision: revision,
                        message: "migration \(name): applied again in \(group.label) by \(actor) (its history had "
                            + "gone backwards)", details: .object(actor.details))
                ]))
            return "\(name): applied again in \(group.label)"
        }
    }
}
