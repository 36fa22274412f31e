import Foundation

extension NodeReader {
    mutating func policy(_ spec: Field, name: String, at: SourceLocation) -> PolicyManifest? {
        guard let f = fields(spec, allowed: ["rules"], required: ["rules"]),
            let rulesField = f["rules"]
        else { return nil }
        guard let items = rulesField.items else {
            error(rulesField, "expected a list, found \(describe(rulesField.node))")
            return nil
        }
        let before = diagnostics.count
        let rules = items.compactMap { rule($0) }
        return diagnostics.count == before ? PolicyManifest(name: name, location: at, rules: rules) : nil
    }

    /// `{match: {environments, classes, risks, production}, require: {approval, analysis, minimumStrategy,
    /// windows}}`.
    private mutating func rule(_ item: Field) -> PolicyManifest.Rule? {
        guard let g = fields(item, allowed: ["match", "require"], required: ["require"]) else { return nil }
        var rule = PolicyManifest.Rule(location: location(item.node))
        if let match = g["match"],
            let m = fields(match, allowed: ["environments", "classes", "risks", "production"])
        {
            if let field = m["environments"] {
                rule.environments = stringList(field)?.map(\.0) ?? []
            }
            if let field = m["classes"] { rule.classes = listOf(field, ChangeClass.self) ?? [] }
            if let field = m["risks"] { rule.risks = listOf(field, RiskLevel.self) ?? [] }
            if let field = m["production"] { rule.production = bool(field) }
        }
        if let require = g["require"],
            let r = fields(require, allowed: ["approval", "analysis", "minimumStrategy", "windows"])
        {
            if let field = r["approval"] { rule.requireApproval = bool(field) ?? false }
            if let field = r["analysis"] { rule.requireAnalysis = bool(field) ?? false }
            if let field = r["minimumStrategy"] { rule.minimumStrategy = oneOf(field, StrategyType.self) }
            if let field = r["windows"] {
                if let windows = field.items {
                    rule.windows = windows.compactMap { window($0) }
                } else {
                    error(field, "expected a list, found \(describe(field.node))")
                }
            }
        }
        return rule
    }
}
