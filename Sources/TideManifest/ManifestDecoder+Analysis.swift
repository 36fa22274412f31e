import Foundation
internal import Yams

extension NodeReader {
    mutating func analysis(
        _ spec: Node, name: String, at: SourceLocation, owner: String, path: String = "spec"
    ) -> AnalysisManifest? {
        guard
            let f = fields(
                spec, path,
                allowed: [
                    "interval", "count", "initialDelay", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit",
                    "consecutiveSuccessLimit", "metrics", "judge",
                ], required: ["metrics"], owner: owner)
        else { return nil }
        let before = diagnostics.count
        var analysis = AnalysisManifest(name: name, location: at)
        if let node = f["interval"]?.value, let seconds = duration(node, "\(path).interval", owner: owner) {
            // 0s would take every measurement of the analysis at once.
            if seconds > 0 {
                analysis.interval = seconds
            } else {
                error(node, "\(owner)\(path).interval: must be longer than 0s")
            }
        }
        if let node = f["initialDelay"]?.value, let seconds = duration(node, "\(path).initialDelay", owner: owner) {
            analysis.initialDelay = seconds
        }
        for (field, keyPath, minimum) in [
            ("count", \AnalysisManifest.count, 1), ("failureLimit", \.failureLimit, -1),
            ("inconclusiveLimit", \.inconclusiveLimit, 0), ("consecutiveErrorLimit", \.consecutiveErrorLimit, 0),
        ] {
            guard let node = f[field]?.value else { continue }
            if let text = string(node, "\(path).\(field)", owner: owner), let value = Int(text), value >= minimum {
                analysis[keyPath: keyPath] = value
            } else if case .scalar = node {
                error(node, "\(owner)\(path).\(field): expected a whole number of at least \(minimum)")
            }
        }
        analysis.countGiven = f["count"] != nil
        if let node = f["consecutiveSuccessLimit"]?.value {
            if let text = string(node, "\(path).consecutiveSuccessLimit", owner: owner), let value = Int(text),
                value >= 1
            {
                analysis.consecutiveSuccessLimit = value
            } else if case .scalar = node {
                error(node, "\(owner)\(path).consecutiveSuccessLimit: expected a whole number of at least 1")
            }
        }
        if let node = f["judge"]?.value,
            let j = fields(node, "\(path).judge", allowed: ["confidence", "pass", "marginal"], owner: owner)
        {
            var judge = AnalysisManifest.Judge()
            if let c = j["confidence"]?.value,
                let value = number(c, "\(path).judge.confidence", owner: owner, in: 0.5...0.9999)
            {
                judge.confidence = value
            }
            if let p = j["pass"]?.value, let value = number(p, "\(path).judge.pass", owner: owner, in: 0...100) {
                judge.pass = value
            }
            if let m = j["marginal"]?.value, let value = number(m, "\(path).judge.marginal", owner: owner, in: 0...100)
            {
                judge.marginal = value
                if value > judge.pass {
                    error(m, "\(owner)\(path).judge.marginal: \(value) is above pass (\(judge.pass)); marginal ≤ pass")
                }
            }
            analysis.judge = judge
        }
        if let node = f["metrics"]?.value {
            if case .sequence(let items) = node, !items.isEmpty {
                for (index, item) in items.enumerated() {
                    if let metric = metric(
                        item, "\(path).metrics[\(index)]", judged: analysis.judge != nil, owner: owner)
                    {
                        analysis.metrics.append(metric)
                    }
                }
            } else {
                error(node, "\(owner)\(path).metrics: expected a list of at least one metric")
            }
        }
        return diagnostics.count == before ? analysis : nil
    }

    mutating func metric(_ node: Node, _ path: String, judged: Bool, owner: String) -> AnalysisManifest.Metric? {
        let judgeFields = ["baseline", "select", "direction", "critical", "weight", "tolerance"]
        guard
            let f = fields(
                node, path,
                allowed: ["name", "provider", "successCondition", "failureCondition", "dryRun"] + judgeFields,
                required: ["name", "provider"] + (judged ? ["baseline"] : []), owner: owner),
            let nameNode = f["name"]?.value, let name = string(nameNode, "\(path).name", owner: owner),
            let providerNode = f["provider"]?.value
        else { return nil }
        let provider = self.provider(providerNode, "\(path).provider", owner: owner)
        func condition(_ field: String) -> Condition? {
            guard let node = f[field]?.value, let text = string(node, "\(path).\(field)", owner: owner) else {
                return nil
            }
            do {
                return try Condition(text)
            } catch {
                self.error(node, "\(owner)\(path).\(field): \(error)")
                return nil
            }
        }
        let success = condition("successCondition")
        let failure = condition("failureCondition")
        if judged {
            for field in ["successCondition", "failureCondition"] {
                if let entry = f[field] {
                    error(
                        entry.key,
                        "\(owner)\(path).\(field): a judged analysis classifies metrics by the judge; remove it")
                }
            }
        } else {
            if f["successCondition"] == nil && f["failureCondition"] == nil {
                error(node, "\(owner)\(path): give a successCondition, a failureCondition, or both")
            }
            for field in judgeFields {
                if let entry = f[field] {
                    error(entry.key, "\(owner)\(path).\(field): only for an analysis with a judge (spec.judge)")
                }
            }
        }
        guard let provider else { return nil }
        var metric = AnalysisManifest.Metric(
            name: name, provider: provider, successCondition: success, failureCondition: failure,
            location: location(node))
        if let d = f["dryRun"]?.value { metric.dryRun = bool(d, "\(path).dryRun", owner: owner) ?? false }
        if judged {
            if let b = f["baseline"]?.value { metric.baseline = self.provider(b, "\(path).baseline", owner: owner) }
            metric.select = condition("select")
            if let d = f["direction"]?.value, let text = string(d, "\(path).direction", owner: owner) {
                if let direction = AnalysisManifest.Direction(rawValue: text) {
                    metric.direction = direction
                } else {
                    error(d, "\(owner)\(path).direction: '\(text)' is not increase, decrease or either")
                }
            }
            if let c = f["critical"]?.value { metric.critical = bool(c, "\(path).critical", owner: owner) ?? false }
            if let w = f["weight"]?.value {
                metric.weight = number(w, "\(path).weight", owner: owner, in: 0...1e6) ?? 1
            }
            if let t = f["tolerance"]?.value {
                metric.tolerance = number(t, "\(path).tolerance", owner: owner, in: 0...100) ?? 0
            }
        }
        return metric
    }

    /// `provider:` (and a judged metric's `baseline:`): exactly one of command, prometheus, http or probe.
    mutating func provider(_ providerNode: Node, _ path: String, owner: String) -> AnalysisManifest.Provider? {
        guard
            let p = fields(providerNode, path, allowed: ["command", "prometheus", "http", "probe"], owner: owner)
        else { return nil }
        var provider: AnalysisManifest.Provider?
        if let command = p["command"]?.value,
            let c = fields(
                command, "\(path).command", allowed: ["command", "timeout"], required: ["command"], owner: owner),
            let argvNode = c["command"]?.value,
            let argv = stringList(argvNode, "\(path).command.command", owner: owner)
        {
            var timeout = 30.0
            if let t = c["timeout"]?.value, let seconds = duration(t, "\(path).command.timeout", owner: owner) {
                if seconds <= 0 { error(t, "\(owner)\(path).command.timeout: must be longer than 0s") }
                timeout = seconds
            }
            if argv.isEmpty { error(argvNode, "\(owner)\(path).command.command: must name a program") }
            provider = .command(argv.map(\.0), timeout: timeout)
        }
        func timeout(_ g: [String: (key: Node, value: Node)], _ where_: String, default value: Double) -> Double {
            guard let node = g["timeout"]?.value, let seconds = duration(node, "\(where_).timeout", owner: owner)
            else { return value }
            // 0s would fail every measurement before it started.
            guard seconds > 0 else {
                error(node, "\(owner)\(where_).timeout: must be longer than 0s")
                return value
            }
            return seconds
        }
        func url(_ g: [String: (key: Node, value: Node)], _ field: String, _ where_: String) -> String? {
            guard let node = g[field]?.value, let text = string(node, "\(where_).\(field)", owner: owner) else {
                return nil
            }
            let shown = DatabaseURL.redacted(text)
            guard let parsed = URLComponents(string: text), ["http", "https"].contains(parsed.scheme ?? ""),
                parsed.host?.isEmpty == false
            else {
                error(node, "\(owner)\(where_).\(field): '\(shown)' is not an http:// or https:// URL")
                return nil
            }
            // Credentials go in headers, never in a URL: URLs are printed, logged and stored.
            if parsed.user != nil || parsed.password != nil
                || (parsed.query.map { $0.contains(DatabaseURL.secretParameter) } ?? false)
            {
                error(
                    node,
                    "\(owner)\(where_).\(field): '\(shown)' carries credentials; give them in headers "
                        + "(headers: {Authorization: …}), never in the URL")
                return nil
            }
            return text
        }
        func headers(_ g: [String: (key: Node, value: Node)], _ where_: String) -> [String: String] {
            g["headers"].flatMap { stringMap($0.value, "\(where_).headers", owner: owner) } ?? [:]
        }
        if let node = p["prometheus"]?.value {
            let where_ = "\(path).prometheus"
            if let g = fields(
                node, where_, allowed: ["address", "query", "timeout"], required: ["address", "query"], owner: owner),
                let address = url(g, "address", where_),
                let query = g["query"].flatMap({ string($0.value, "\(where_).query", owner: owner) })
            {
                provider = .prometheus(address: address, query: query, timeout: timeout(g, where_, default: 30))
            }
        }
        if let node = p["http"]?.value {
            let where_ = "\(path).http"
            if let g = fields(node, where_, allowed: ["url", "headers", "timeout"], required: ["url"], owner: owner),
                let address = url(g, "url", where_)
            {
                provider = .http(url: address, headers: headers(g, where_), timeout: timeout(g, where_, default: 30))
            }
        }
        if let node = p["probe"]?.value {
            let where_ = "\(path).probe"
            if let g = fields(
                node, where_, allowed: ["url", "requests", "concurrency", "timeout", "headers"], required: ["url"],
                owner: owner),
                let address = url(g, "url", where_)
            {
                func count(_ field: String, _ value: Int, _ limit: Int) -> Int {
                    guard let entry = g[field] else { return value }
                    guard let text = string(entry.value, "\(where_).\(field)", owner: owner), let n = Int(text),
                        (1...limit).contains(n)
                    else {
                        error(entry.value, "\(owner)\(where_).\(field): expected a whole number from 1 to \(limit)")
                        return value
                    }
                    return n
                }
                provider = .probe(
                    url: address, requests: count("requests", 50, 100_000), concurrency: count("concurrency", 4, 256),
                    timeout: timeout(g, where_, default: 5), headers: headers(g, where_))
            }
        }
        if p.count > 1 {
            error(providerNode, "\(owner)\(path): name one provider, not \(p.count)")
        }
        if p.isEmpty {
            error(providerNode, "\(owner)\(path): name one provider (command, prometheus, http or probe)")
        }
        return provider
    }
}
