import Foundation
internal import Yams

extension NodeReader {
    mutating func policy(_ spec: Node, name: String, at: SourceLocation, owner: String) -> PolicyManifest? {
        guard let f = fields(spec, "spec", allowed: ["rules"], required: ["rules"], owner: owner),
            let rulesNode = f["rules"]?.value
        else { return nil }
        guard case .sequence(let items) = rulesNode else {
            error(rulesNode, "\(owner)spec.rules: expected a list, found \(describe(rulesNode))")
            return nil
        }
        let before = diagnostics.count
        var rules: [PolicyManifest.Rule] = []
        for (index, item) in items.enumerated() {
            let path = "spec.rules[\(index)]"
            guard let g = fields(item, path, allowed: ["match", "require"], required: ["require"], owner: owner)
            else { continue }
            var rule = PolicyManifest.Rule(location: location(item))
            if let match = g["match"]?.value,
                let m = fields(
                    match, "\(path).match", allowed: ["environments", "classes", "risks", "production"], owner: owner)
            {
                if let node = m["environments"]?.value {
                    rule.environments = stringList(node, "\(path).match.environments", owner: owner)?.map(\.0) ?? []
                }
                for (field, known) in [
                    ("classes", ["FEATURE", "CONFIG", "HOTFIX", "ROLLBACK", "REMOVAL"]),
                    ("risks", ["LOW", "MEDIUM", "HIGH"]),
                ] {
                    guard let node = m[field]?.value,
                        let values = stringList(node, "\(path).match.\(field)", owner: owner)
                    else { continue }
                    for (value, valueNode) in values where !known.contains(value) {
                        error(
                            valueNode,
                            "\(owner)\(path).match.\(field): '\(value)' is not one of \(known.joined(separator: ", "))")
                    }
                    if field == "classes" { rule.classes = values.map(\.0) } else { rule.risks = values.map(\.0) }
                }
                if let node = m["production"]?.value {
                    rule.production = bool(node, "\(path).match.production", owner: owner)
                }
            }
            if let requireNode = g["require"]?.value,
                let r = fields(
                    requireNode, "\(path).require", allowed: ["approval", "analysis", "minimumStrategy", "windows"],
                    owner: owner)
            {
                if let node = r["approval"]?.value {
                    rule.requireApproval = bool(node, "\(path).require.approval", owner: owner) ?? false
                }
                if let node = r["analysis"]?.value {
                    rule.requireAnalysis = bool(node, "\(path).require.analysis", owner: owner) ?? false
                }
                if let node = r["minimumStrategy"]?.value,
                    let strategy = string(node, "\(path).require.minimumStrategy", owner: owner)
                {
                    if PolicyManifest.strategyOrder.contains(strategy) {
                        rule.minimumStrategy = strategy
                    } else {
                        error(
                            node,
                            "\(owner)\(path).require.minimumStrategy: '\(strategy)' is not one of "
                                + PolicyManifest.strategyOrder.joined(separator: ", "))
                    }
                }
                if let node = r["windows"]?.value {
                    if case .sequence(let windows) = node {
                        for (w, windowNode) in windows.enumerated() {
                            if let window = window(windowNode, "\(path).require.windows[\(w)]", owner: owner) {
                                rule.windows.append(window)
                            }
                        }
                    } else {
                        error(node, "\(owner)\(path).require.windows: expected a list, found \(describe(node))")
                    }
                }
            }
            rules.append(rule)
        }
        return diagnostics.count == before ? PolicyManifest(name: name, location: at, rules: rules) : nil
    }
}
