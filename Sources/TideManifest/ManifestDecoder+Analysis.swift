import Foundation

extension NodeReader {
    /// An Analysis's `spec`, or a canary step's inline `analysis:` (then `spec` is that step's field).
    mutating func analysis(_ spec: Field, name: String, at: SourceLocation) -> AnalysisManifest? {
        guard
            let f = fields(
                spec,
                allowed: [
                    "interval", "count", "initialDelay", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit",
                    "consecutiveSuccessLimit", "metrics", "judge",
                ], required: ["metrics"])
        else { return nil }
        let before = diagnostics.count
        var analysis = AnalysisManifest(name: name, location: at)
        if let field = f["interval"], let seconds = duration(field) {
            // 0s would take every measurement of the analysis at once.
            if seconds > 0 {
                analysis.interval = seconds
            } else {
                error(field, "must be longer than 0s")
            }
        }
        if let field = f["initialDelay"], let seconds = duration(field) {
            analysis.initialDelay = seconds
        }
        for (name, keyPath, minimum) in [
            ("count", \AnalysisManifest.count, 1), ("failureLimit", \.failureLimit, -1),
            ("inconclusiveLimit", \.inconclusiveLimit, 0), ("consecutiveErrorLimit", \.consecutiveErrorLimit, 0),
        ] {
            guard let field = f[name] else { continue }
            if let text = string(field), let value = Int(text), value >= minimum {
                analysis[keyPath: keyPath] = value
            } else if case .scalar = field.node {
                error(field, "expected a whole number of at least \(minimum)")
            }
        }
        analysis.countGiven = f["count"] != nil
        if let field = f["consecutiveSuccessLimit"] {
            if let text = string(field), let value = Int(text), value >= 1 {
                analysis.consecutiveSuccessLimit = value
            } else if case .scalar = field.node {
                error(field, "expected a whole number of at least 1")
            }
        }
        if let field = f["judge"], let j = fields(field, allowed: ["confidence", "pass", "marginal"]) {
            analysis.judge = judge(j)
        }
        if let field = f["metrics"] {
            if let items = field.items, !items.isEmpty {
                for item in items {
                    if let metric = metric(item, judged: analysis.judge != nil) { analysis.metrics.append(metric) }
                }
            } else {
                error(field, "expected a list of at least one metric")
            }
        }
        return diagnostics.count == before ? analysis : nil
    }

    /// `judge: {confidence, pass, marginal}` (its fields passed the allowed-keys check).
    private mutating func judge(_ j: FieldMap) -> AnalysisManifest.Judge {
        var judge = AnalysisManifest.Judge()
        if let c = j["confidence"], let value = number(c, in: 0.5...0.9999) {
            judge.confidence = value
        }
        if let p = j["pass"], let value = number(p, in: 0...100) {
            judge.pass = value
        }
        if let m = j["marginal"], let value = number(m, in: 0...100) {
            judge.marginal = value
            if value > judge.pass {
                error(m, "\(value) is above pass (\(judge.pass)); marginal ≤ pass")
            }
        }
        return judge
    }

    mutating func metric(_ field: Field, judged: Bool) -> AnalysisManifest.Metric? {
        let judgeFields = ["baseline", "select", "direction", "critical", "weight", "tolerance"]
        guard
            let f = fields(
                field,
                allowed: ["name", "provider", "successCondition", "failureCondition", "dryRun"] + judgeFields,
                required: ["name", "provider"] + (judged ? ["baseline"] : [])),
            let nameField = f["name"], let name = string(nameField),
            let providerField = f["provider"]
        else { return nil }
        let provider = self.provider(providerField)
        func condition(_ name: String) -> Condition? {
            guard let conditionField = f[name], let text = string(conditionField) else { return nil }
            do {
                return try Condition(text)
            } catch {
                self.error(conditionField, "\(error)")
                return nil
            }
        }
        let success = condition("successCondition")
        let failure = condition("failureCondition")
        if judged {
            for name in ["successCondition", "failureCondition"] {
                if let key = f.key(name) {
                    error(key, "a judged analysis classifies metrics by the judge; remove it")
                }
            }
        } else {
            if f["successCondition"] == nil && f["failureCondition"] == nil {
                error(field, "give a successCondition, a failureCondition, or both")
            }
            for name in judgeFields {
                if let key = f.key(name) {
                    error(key, "only for an analysis with a judge (spec.judge)")
                }
            }
        }
        guard let provider else { return nil }
        var metric = AnalysisManifest.Metric(
            name: name, provider: provider, successCondition: success, failureCondition: failure,
            location: location(field.node))
        if let d = f["dryRun"] { metric.dryRun = bool(d) ?? false }
        if judged {
            if let b = f["baseline"] { metric.baseline = self.provider(b) }
            metric.select = condition("select")
            if let d = f["direction"], let text = string(d) {
                if let direction = AnalysisManifest.Direction(rawValue: text) {
                    metric.direction = direction
                } else {
                    error(d, "'\(text)' is not increase, decrease or either")
                }
            }
            if let c = f["critical"] { metric.critical = bool(c) ?? false }
            if let w = f["weight"] {
                metric.weight = number(w, in: 0...1e6) ?? 1
            }
            if let t = f["tolerance"] {
                metric.tolerance = number(t, in: 0...100) ?? 0
            }
        }
        return metric
    }

    /// `provider:` (and a judged metric's `baseline:`): exactly one of command, prometheus, http or probe.
    mutating func provider(_ field: Field) -> AnalysisManifest.Provider? {
        guard let p = fields(field, allowed: ["command", "prometheus", "http", "probe"]) else { return nil }
        var provider: AnalysisManifest.Provider?
        if let command = p["command"],
            let c = fields(command, allowed: ["command", "timeout"], required: ["command"]),
            let argvField = c["command"],
            let argv = stringList(argvField)
        {
            var timeout = 30.0
            if let t = c["timeout"], let seconds = duration(t) {
                if seconds <= 0 { error(t, "must be longer than 0s") }
                timeout = seconds
            }
            if argv.isEmpty { error(argvField, "must name a program") }
            provider = .command(argv.map(\.0), timeout: timeout)
        }
        func timeout(_ g: FieldMap, default value: Double) -> Double {
            guard let t = g["timeout"], let seconds = duration(t) else { return value }
            // 0s would fail every measurement before it started.
            guard seconds > 0 else {
                error(t, "must be longer than 0s")
                return value
            }
            return seconds
        }
        func url(_ g: FieldMap, _ name: String) -> String? {
            guard let u = g[name], let text = string(u) else { return nil }
            let shown = DatabaseURL.redacted(text)
            guard let parsed = URLComponents(string: text), ["http", "https"].contains(parsed.scheme ?? ""),
                parsed.host?.isEmpty == false
            else {
                error(u, "'\(shown)' is not an http:// or https:// URL")
                return nil
            }
            // Credentials go in headers, never in a URL: URLs are printed, logged and stored.
            if parsed.user != nil || parsed.password != nil
                || (parsed.query.map { $0.contains(DatabaseURL.secretParameter) } ?? false)
            {
                error(
                    u,
                    "'\(shown)' carries credentials; give them in headers "
                        + "(headers: {Authorization: …}), never in the URL")
                return nil
            }
            return text
        }
        func headers(_ g: FieldMap) -> [String: String] {
            g["headers"].flatMap { stringMap($0) } ?? [:]
        }
        if let prometheus = p["prometheus"] {
            if let g = fields(prometheus, allowed: ["address", "query", "timeout"], required: ["address", "query"]),
                let address = url(g, "address"),
                let query = g["query"].flatMap({ string($0) })
            {
                provider = .prometheus(address: address, query: query, timeout: timeout(g, default: 30))
            }
        }
        if let http = p["http"] {
            if let g = fields(http, allowed: ["url", "headers", "timeout"], required: ["url"]),
                let address = url(g, "url")
            {
                provider = .http(url: address, headers: headers(g), timeout: timeout(g, default: 30))
            }
        }
        if let probe = p["probe"] {
            if let g = fields(
                probe, allowed: ["url", "requests", "concurrency", "timeout", "headers"], required: ["url"]),
                let address = url(g, "url")
            {
                func count(_ name: String, _ value: Int, _ limit: Int) -> Int {
                    guard let entry = g[name] else { return value }
                    guard let text = string(entry), let n = Int(text), (1...limit).contains(n) else {
                        error(entry, "expected a whole number from 1 to \(limit)")
                        return value
                    }
                    return n
                }
                provider = .probe(
                    url: address, requests: count("requests", 50, 100_000), concurrency: count("concurrency", 4, 256),
                    timeout: timeout(g, default: 5), headers: headers(g))
            }
        }
        if p.entries.count > 1 {
            error(field, "name one provider, not \(p.entries.count)")
        }
        if p.entries.isEmpty {
            error(field, "name one provider (command, prometheus, http or probe)")
        }
        return provider
    }
}
