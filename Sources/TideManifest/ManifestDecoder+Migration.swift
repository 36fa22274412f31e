import Foundation
internal import Yams

extension NodeReader {
    mutating func migration(_ spec: Node, name: String, at: SourceLocation, owner: String) -> MigrationManifest? {
        guard
            let f = fields(
                spec, "spec", allowed: ["executor", "expand", "backfill", "contract"], required: ["executor"],
                owner: owner),
            let executorNode = f["executor"]?.value,
            let executor = self.name(executorNode, "spec.executor", owner: owner)
        else { return nil }
        let before = diagnostics.count
        var migration = MigrationManifest(
            name: name, location: at, executor: executor, executorLocation: location(executorNode))
        func statements(_ node: Node, _ path: String, required: Bool, batched: Bool = false) -> [String] {
            guard let items = stringList(node, path, owner: owner) else { return [] }
            for (index, (text, item)) in items.enumerated() {
                if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    error(item, "\(owner)\(path): an empty statement")
                } else if !batched && text.contains("{{batch}}") {
                    // Only a batched backfill replaces it; anywhere else the database would get it verbatim.
                    error(
                        item,
                        "\(owner)\(path)[\(index)]: {{batch}} is replaced only in a backfill with batchSize "
                            + "(spec.backfill.batchSize); the database would be sent it as written")
                }
            }
            if required && items.isEmpty { error(node, "\(owner)\(path): list at least one statement") }
            return items.map(\.0)
        }
        let allowed: [MigrationManifest.PhaseName: [String]] = [
            .expand: ["up", "down", "transaction"], .backfill: ["up", "batchSize", "maxRounds", "transaction"],
            .contract: ["up", "after", "transaction"],
        ]
        for phaseName in MigrationManifest.PhaseName.allCases {
            guard let node = f[phaseName.rawValue]?.value else { continue }
            let path = "spec.\(phaseName.rawValue)"
            guard let g = fields(node, path, allowed: allowed[phaseName]!, required: ["up"], owner: owner),
                let up = g["up"]?.value
            else { continue }
            let batched = phaseName == .backfill && g["batchSize"] != nil
            var phase = MigrationManifest.Phase(
                up: statements(up, "\(path).up", required: true, batched: batched), location: location(node))
            if let down = g["down"]?.value { phase.down = statements(down, "\(path).down", required: false) }
            if let batch = g["batchSize"]?.value {
                if let text = string(batch, "\(path).batchSize", owner: owner), let size = Int(text), size > 0 {
                    phase.batchSize = size
                    if !phase.up.contains(where: { $0.contains("{{batch}}") }) {
                        error(
                            batch,
                            "\(owner)\(path).batchSize: a batched backfill needs {{batch}} in a statement "
                                + "(… LIMIT {{batch}}): each round changes at most that many rows")
                    } else if !phase.up.contains(where: {
                        MigrationManifest.topLevelCommand($0).map(Self.modifying.contains) == true
                    }) {
                        // Rounds end when a round's INSERT/UPDATE/DELETE/MERGE statements change no row: rows changed
                        // inside a SELECT (a data-modifying WITH, a function) are not counted, so such a backfill would
                        // stop after its first round — and a contract would then drop what it had not copied yet.
                        error(
                            batch,
                            "\(owner)\(path).batchSize: a batched backfill ends when a round's INSERT, UPDATE, DELETE "
                                + "or MERGE statements change no row, and none of these statements is one at the top "
                                + "level (rows changed inside a SELECT — WITH … AS (UPDATE …) SELECT, a function — are "
                                + "not counted); write the UPDATE itself")
                    }
                } else {
                    error(batch, "\(owner)\(path).batchSize: expected a whole number above 0")
                }
            }
            if let after = g["after"]?.value, let seconds = duration(after, "\(path).after", owner: owner) {
                phase.after = seconds
            }
            if let rounds = g["maxRounds"]?.value {
                if let text = string(rounds, "\(path).maxRounds", owner: owner), let count = Int(text), count > 0 {
                    phase.maxRounds = count
                    if g["batchSize"] == nil {
                        error(rounds, "\(owner)\(path).maxRounds: only a batched backfill (batchSize) runs in rounds")
                    }
                } else {
                    error(rounds, "\(owner)\(path).maxRounds: expected a whole number above 0")
                }
            }
            if let node = g["transaction"]?.value, let value = bool(node, "\(path).transaction", owner: owner) {
                phase.transaction = value
                if !value && g["batchSize"] != nil {
                    error(
                        node,
                        "\(owner)\(path).transaction: a batched backfill commits each round in a transaction of "
                            + "its own; transaction: false is for statements that cannot run in one")
                }
            }
            if phase.transaction {
                let lists = [("up", phase.up), ("down", phase.down)]
                for (field, list) in lists {
                    for (index, statement) in list.enumerated() where MigrationManifest.needsNoTransaction(statement) {
                        error(
                            g[field]?.value ?? node,
                            "\(owner)\(path).\(field)[\(index)]: the database refuses this statement inside a "
                                + "transaction; set \(path).transaction: false (and make the phase's statements "
                                + "idempotent: CREATE INDEX CONCURRENTLY IF NOT EXISTS …)")
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
            error(spec, "\(owner)spec: give at least one phase: expand, backfill or contract")
        }
        return diagnostics.count == before ? migration : nil
    }

    static let modifying: Set<String> = ["INSERT", "UPDATE", "DELETE", "MERGE"]
}
