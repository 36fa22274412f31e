import Foundation

extension NodeReader {
    mutating func migration(_ spec: Field, name: String, at: SourceLocation) -> MigrationManifest? {
        guard
            let f = fields(spec, allowed: ["executor", "expand", "backfill", "contract"], required: ["executor"]),
            let executorField = f["executor"], let executor = self.name(executorField)
        else { return nil }
        let before = diagnostics.count
        var migration = MigrationManifest(
            name: name, location: at, executor: executor, executorLocation: location(executorField.node))
        func statements(_ field: Field, required: Bool, batched: Bool = false) -> [String] {
            guard let items = stringList(field) else { return [] }
            for (index, (text, item)) in items.enumerated() {
                if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    error(field.at(item), "an empty statement")
                } else if !batched && text.contains("{{batch}}") {
                    // Only a batched backfill replaces it; anywhere else the database would get it verbatim.
                    error(
                        field.item(index, item),
                        "{{batch}} is replaced only in a backfill with batchSize (spec.backfill.batchSize); the "
                            + "database would be sent it as written")
                }
            }
            if required && items.isEmpty { error(field, "list at least one statement") }
            return items.map(\.0)
        }
        let allowed: [MigrationManifest.PhaseName: [String]] = [
            .expand: ["up", "down", "transaction"], .backfill: ["up", "batchSize", "maxRounds", "transaction"],
            .contract: ["up", "after", "transaction"],
        ]
        for phaseName in MigrationManifest.PhaseName.allCases {
            guard let phaseField = f[phaseName.rawValue] else { continue }
            guard let g = fields(phaseField, allowed: allowed[phaseName]!, required: ["up"]), let up = g["up"]
            else { continue }
            let batched = phaseName == .backfill && g["batchSize"] != nil
            var phase = MigrationManifest.Phase(
                up: statements(up, required: true, batched: batched), location: location(phaseField.node))
            if let down = g["down"] { phase.down = statements(down, required: false) }
            if let batch = g["batchSize"] {
                if let text = string(batch), let size = Int(text), size > 0 {
                    phase.batchSize = size
                    if !phase.up.contains(where: { $0.contains("{{batch}}") }) {
                        error(
                            batch,
                            "a batched backfill needs {{batch}} in a statement (… LIMIT {{batch}}): each round "
                                + "changes at most that many rows")
                    } else if !phase.up.contains(where: {
                        MigrationManifest.topLevelCommand($0).map(Self.modifying.contains) == true
                    }) {
                        // Rounds end when a round's INSERT/UPDATE/DELETE/MERGE statements change no row: rows changed
                        // inside a SELECT (a data-modifying WITH, a function) are not counted, so such a backfill would
                        // stop after its first round — and a contract would then drop what it had not copied yet.
                        error(
                            batch,
                            "a batched backfill ends when a round's INSERT, UPDATE, DELETE or MERGE statements "
                                + "change no row, and none of these statements is one at the top level (rows changed "
                                + "inside a SELECT — WITH … AS (UPDATE …) SELECT, a function — are not counted); "
                                + "write the UPDATE itself")
                    }
                } else {
                    error(batch, "expected a whole number above 0")
                }
            }
            if let after = g["after"], let seconds = duration(after) {
                phase.after = seconds
            }
            if let rounds = g["maxRounds"] {
                if let text = string(rounds), let count = Int(text), count > 0 {
                    phase.maxRounds = count
                    if g["batchSize"] == nil {
                        error(rounds, "only a batched backfill (batchSize) runs in rounds")
                    }
                } else {
                    error(rounds, "expected a whole number above 0")
                }
            }
            if let transaction = g["transaction"], let value = bool(transaction) {
                phase.transaction = value
                if !value && g["batchSize"] != nil {
                    error(
                        transaction,
                        "a batched backfill commits each round in a transaction of its own; transaction: false is "
                            + "for statements that cannot run in one")
                }
            }
            if phase.transaction {
                // Reported at the list: up is required, and down is read only when it is written.
                for (name, list) in [("up", phase.up), ("down", phase.down)] {
                    guard let field = g[name] else { continue }
                    for (index, statement) in list.enumerated() where MigrationManifest.needsNoTransaction(statement) {
                        error(
                            field.item(index, field.node),
                            "the database refuses this statement inside a transaction; set "
                                + "\(phaseField.path).transaction: false (and make the phase's statements idempotent: "
                                + "CREATE INDEX CONCURRENTLY IF NOT EXISTS …)")
                    }
                }
            }
            switch phaseName {
            case .expand: migration.expand = phase
            case .backfill: migration.backfill = phase
            case .contract: migration.contract = phase
            }
        }
        if f["expand"] == nil && f["backfill"] == nil && f["contract"] == nil {
            error(spec, "give at least one phase: expand, backfill or contract")
        }
        return diagnostics.count == before ? migration : nil
    }

    static let modifying: Set<String> = ["INSERT", "UPDATE", "DELETE", "MERGE"]
}
