/// A migration's executor is defined and of type sql.
enum MigrationExecutorCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for migration in set.migrations.values.sorted(by: { $0.location < $1.location }) {
            if let executor = set.executors[migration.executor] {
                if executor.type != .sql {
                    found.append(
                        Diagnostic(
                            migration.executorLocation,
                            "Migration '\(migration.name)': spec.executor: '\(migration.executor)' is a "
                                + "\(executor.type.rawValue) executor; migrations run on an executor of type sql"))
                }
            } else if !set.isBroken("Executor", migration.executor) {
                found.append(
                    Diagnostic(
                        migration.executorLocation,
                        "Migration '\(migration.name)': spec.executor: executor '\(migration.executor)' is not defined"
                            + ManifestSet.known(set.executors.keys)))
            }
        }
        return found
    }
}
