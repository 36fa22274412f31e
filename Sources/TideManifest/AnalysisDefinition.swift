import Foundation

extension AnalysisManifest {
    /// The analysis as canonical JSON: every field that decides what it measures and how it judges (not where it
    /// was written). A rollout freezes the digest of each analysis it runs; an edit pre-empts it like an edit of its
    /// steps.
    public var definition: JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(name), "interval": .double(interval), "count": .int(Int64(count)),
            "countGiven": .bool(countGiven), "initialDelay": .double(initialDelay),
            "failureLimit": .int(Int64(failureLimit)), "inconclusiveLimit": .int(Int64(inconclusiveLimit)),
            "consecutiveErrorLimit": .int(Int64(consecutiveErrorLimit)),
            "metrics": .array(metrics.map(\.definition)),
        ]
        if let consecutiveSuccessLimit { object["consecutiveSuccessLimit"] = .int(Int64(consecutiveSuccessLimit)) }
        if let judge {
            object["judge"] = .object([
                "confidence": .double(judge.confidence), "pass": .double(judge.pass),
                "marginal": .double(judge.marginal),
            ])
        }
        return .object(object)
    }

    /// The digest of `definition`.
    public var digest: String { DesiredTarget.digest(of: definition) }
}

extension AnalysisManifest.Metric {
    var definition: JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(name), "provider": provider.definition, "direction": .string(direction.rawValue),
            "critical": .bool(critical), "weight": .double(weight), "tolerance": .double(tolerance),
            "dryRun": .bool(dryRun),
        ]
        if let successCondition { object["successCondition"] = .string(successCondition.description) }
        if let failureCondition { object["failureCondition"] = .string(failureCondition.description) }
        if let baseline { object["baseline"] = baseline.definition }
        if let select { object["select"] = .string(select.description) }
        return .object(object)
    }
}

extension AnalysisManifest.Provider {
    var definition: JSONValue {
        func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
        func map(_ values: [String: String]) -> JSONValue { .object(values.mapValues(JSONValue.string)) }
        switch self {
        case .command(let argv, let timeout):
            return .object(["command": strings(argv), "timeout": .double(timeout)])
        case .prometheus(let address, let query, let timeout):
            return .object([
                "prometheus": .object([
                    "address": .string(address), "query": .string(query), "timeout": .double(timeout),
                ])
            ])
        case .http(let url, let headers, let timeout):
            return .object([
                "http": .object(["url": .string(url), "headers": map(headers), "timeout": .double(timeout)])
            ])
        case .probe(let url, let requests, let concurrency, let timeout, let headers):
            return .object([
                "probe": .object([
                    "url": .string(url), "requests": .int(Int64(requests)), "concurrency": .int(Int64(concurrency)),
                    "timeout": .double(timeout), "headers": map(headers),
                ])
            ])
        }
    }
}
