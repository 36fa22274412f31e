import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

extension RolloutRunner {
    /// What an analysis step decided in this pass.
    enum AnalysisVerdict {
        /// More measurements are due later.
        case wait(Date, String)
        case passed(String)
        /// Neither condition held too often: a person decides.
        case inconclusive(String)
        case failed(String)
    }

    /// Takes every measurement that is due, then judges the run against the analysis' limits (Argo Rollouts'
    /// rules: with only a success condition, not meeting it is a failure; with only a failure condition, not
    /// meeting it is a success; with both, meeting neither is inconclusive). No data (empty output, null, an
    /// empty list, NaN) is inconclusive, never a success.
    func analyse(
        _ name: String, step: Int, rollout: inout Rollout, target: DesiredTarget, desired: DesiredState,
        background: Bool = false
    ) async throws -> (AnalysisVerdict, Int) {
        guard let analysis = desired.analyses[name] else { return (.failed("analysis '\(name)' is not defined"), 0) }
        var run =
            (background ? rollout.background : rollout.analysis).flatMap {
                $0.name == name && $0.step == step ? $0 : nil
            }
            ?? AnalysisRun(name: name, step: step, startedAt: rollout.stepStartedAt)
        defer {
            if background { rollout.background = run } else { rollout.analysis = run }
        }
        var calls = 0
        // A run from before errors stopped counting: every round it took counted.
        if run.counted == nil { run.counted = run.rounds }
        let needed = Self.roundsNeeded(analysis, background: background)
        let deciding = Set(analysis.metrics.filter { !$0.dryRun }.map(\.name))
        while run.counted ?? run.rounds < needed {
            // A late pass takes one round, not every round it missed: the next counted round is due an interval
            // after the last one at the earliest.
            var due = run.startedAt.addingTimeInterval(analysis.initialDelay + Double(run.rounds) * analysis.interval)
            if let last = run.measurements.last?.at { due = max(due, last.addingTimeInterval(analysis.interval)) }
            let now = clock.now()
            if now < due {
                return (.wait(due, summary(run, analysis, background: background)), calls)
            }
            var round: [AnalysisRun.Measurement] = []
            for metric in analysis.metrics {
                let measurement = await measure(
                    metric, analysis: analysis, round: run.rounds, rollout: rollout, target: target)
                calls += 1
                round.append(measurement)
                run.measurements.append(measurement)
            }
            run.rounds += 1
            // An error is never a measurement: a round with one does not count toward `count`, and errors in a row
            // are bounded by consecutiveErrorLimit. Dry-run metrics decide nothing.
            let decisive = round.filter { deciding.contains($0.metric) }
            let errored = decisive.contains { $0.phase == .error }
            if !errored { run.counted = (run.counted ?? 0) + 1 }
            run.consecutiveErrors = errored ? run.consecutiveErrors + 1 : 0
            let allSucceeded = !decisive.isEmpty && decisive.allSatisfy { $0.phase == .success }
            run.consecutiveSuccesses = allSucceeded ? (run.consecutiveSuccesses ?? 0) + 1 : 0
            if let verdict = limitReached(run, analysis, deciding: deciding, background: background) {
                return (verdict, calls)
            }
        }
        return (finalVerdict(&run, analysis, background: background), calls)
    }

    /// A limit the rounds so far reached, as the verdict it means (nil: none; measuring goes on): too many failures,
    /// errors in a row, too many inconclusive rounds, or enough successes in a row.
    private func limitReached(
        _ run: AnalysisRun, _ analysis: AnalysisManifest, deciding: Set<String>, background: Bool
    ) -> AnalysisVerdict? {
        let failures = run.measurements.filter { $0.phase == .failure && deciding.contains($0.metric) }.count
        if analysis.failureLimit >= 0 && failures > analysis.failureLimit {
            let failing = run.measurements.last { $0.phase == .failure && deciding.contains($0.metric) }
            return .failed(
                "\(failures) failed measurement(s), limit \(analysis.failureLimit)"
                    + (failing.map { "; \($0.metric) = \($0.value?.canonicalJSON ?? "-"): \($0.message ?? "")" }
                        ?? ""))
        }
        if run.consecutiveErrors > analysis.consecutiveErrorLimit {
            let last = run.measurements.last { $0.phase == .error && deciding.contains($0.metric) }
            return .failed("\(run.consecutiveErrors) measurement errors in a row: \(last?.message ?? "")")
        }
        let inconclusive = run.measurements.filter { $0.phase == .inconclusive && deciding.contains($0.metric) }
        if inconclusive.count > analysis.inconclusiveLimit {
            let last = inconclusive.last
            return .inconclusive("\(last?.metric ?? ""): \(last?.message ?? "")")
        }
        if let limit = analysis.consecutiveSuccessLimit, (run.consecutiveSuccesses ?? 0) >= limit {
            return .passed("\(limit) round(s) in a row succeeded (\(summary(run, analysis, background: background)))")
        }
        return nil
    }

    /// The verdict once every round is taken: no data is never a success; a judge decides when there is one.
    private func finalVerdict(_ run: inout AnalysisRun, _ analysis: AnalysisManifest, background: Bool)
        -> AnalysisVerdict
    {
        // No data is never a success: every deciding metric needs at least one successful measurement, whatever
        // the errors and inconclusive rounds stayed under their limits.
        let unproven = analysis.metrics.filter { !$0.dryRun }.map(\.name).filter { name in
            !run.measurements.contains { $0.metric == name && $0.phase == .success }
        }
        if !unproven.isEmpty {
            let last = run.measurements.last { unproven.contains($0.metric) }
            return .inconclusive(
                "no successful measurement of \(unproven.joined(separator: ", ")) "
                    + "(\(summary(run, analysis, background: background)))"
                    + (last?.message.map { "; last: \($0)" } ?? ""))
        }
        if let judge = analysis.judge {
            let report = Self.judgement(of: run, analysis: analysis, judge: judge)
            run.judgement = try? JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(report))
            switch report.verdict {
            case .pass: return .passed(report.explanation)
            case .fail: return .failed(report.explanation)
            case .marginal, .noData: return .inconclusive(report.explanation)
            }
        }
        return .passed(summary(run, analysis, background: background))
    }

    /// The rounds an analysis takes: its `count`; a background analysis without one measures until the rollout
    /// is promoted (as Argo Rollouts' background analysis does).
    static func roundsNeeded(_ analysis: AnalysisManifest, background: Bool) -> Int {
        background && !analysis.countGiven ? Int.max : analysis.count
    }

    /// When `run`'s next round is due (an interval after its last), nil when it has taken all its rounds.
    func nextRound(of run: AnalysisRun?, analysis: AnalysisManifest?, background: Bool = true) -> Date? {
        guard let run, let analysis, run.counted ?? run.rounds < Self.roundsNeeded(analysis, background: background),
            let last = run.measurements.last?.at
        else {
            return nil
        }
        return last.addingTimeInterval(analysis.interval)
    }

    /// The metrics of analysis `name` that have no successful measurement in `run`, joined for a message; nil
    /// when every metric has one.
    func unprovenMetrics(_ name: String, _ run: AnalysisRun?, desired: DesiredState) -> String? {
        guard let analysis = desired.analyses[name] else { return nil }
        let unproven = analysis.metrics.map(\.name).filter { metric in
            !(run?.measurements.contains { $0.metric == metric && $0.phase == .success } ?? false)
        }
        return unproven.isEmpty ? nil : unproven.joined(separator: ", ")
    }

    /// Every round's samples of each metric, canary against baseline, through the statistical judge.
    static func judgement(
        of run: AnalysisRun, analysis: AnalysisManifest, judge: AnalysisManifest.Judge
    ) -> CanaryJudge.Report {
        func numbers(_ value: JSONValue?, _ side: AnalysisSide) -> [Double] {
            guard case .object(let sides)? = value, case .array(let items)? = sides[side.rawValue] else { return [] }
            return items.compactMap(Condition.number)
        }
        // Dry-run metrics are measured and shown, never judged.
        let metrics = analysis.metrics.filter { !$0.dryRun }.map { metric in
            let measured = run.measurements.filter { $0.metric == metric.name && $0.phase == .success }
            return CanaryJudge.Metric(
                name: metric.name, canary: measured.flatMap { numbers($0.value, .canary) },
                baseline: measured.flatMap { numbers($0.value, .baseline) },
                direction: CanaryJudge.Direction(rawValue: metric.direction.rawValue) ?? .increase,
                critical: metric.critical, weight: metric.weight, tolerance: metric.tolerance)
        }
        return CanaryJudge(confidence: judge.confidence, pass: judge.pass, marginal: judge.marginal).judge(metrics)
    }

    /// Too many inconclusive measurements: the rollout pauses, with an event, until a person resumes,
    /// promotes or aborts it.
    func pauseForPerson(
        _ what: String, summary: String, target: TargetID, rollout: inout Rollout, state: inout LiveTarget,
        calls: Int, background: Date? = nil
    ) async throws -> TargetOutcome {
        rollout.paused = true
        rollout.nextDue = nil
        state.rollout = rollout
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: clock.now(), kind: .rolloutPaused, target: target, revision: rollout.revision,
                        version: rollout.version,
                        message: "\(what) inconclusive (\(summary)); paused for a person: tide resume, promote or abort"
                    )
                ]))
        // A background analysis goes on measuring while the person decides: the pass is due again for it.
        return try await progressing(
            background: background, target, rollout, state: &state,
            message: "\(what) inconclusive (\(summary)); paused: tide resume, promote or abort", executorCalls: calls)
    }

    private func summary(_ run: AnalysisRun, _ analysis: AnalysisManifest, background: Bool = false) -> String {
        let needed = Self.roundsNeeded(analysis, background: background)
        return "\(run.counted ?? run.rounds)/\(needed == Int.max ? "until promotion" : String(needed)) rounds, "
            + "\(run.count(.success)) ok, \(run.count(.failure)) failed, \(run.count(.inconclusive)) inconclusive, "
            + "\(run.count(.error)) errors"
    }

    /// Which version a judged metric measures: the candidate, or the stable one it is compared with. The raw values
    /// are the keys of a sample's JSON and `TIDE_SIDE`.
    enum AnalysisSide: String, Sendable {
        case canary, baseline
    }

    /// What one provider call gave.
    private enum Fetched {
        case value(JSONValue)
        case noData(String)
        case error(String)
    }

    private func measure(
        _ metric: AnalysisManifest.Metric, analysis: AnalysisManifest, round: Int, rollout: Rollout,
        target: DesiredTarget
    ) async -> AnalysisRun.Measurement {
        let now = clock.now()
        func record(_ phase: AnalysisRun.Measurement.Phase, _ value: JSONValue?, _ message: String)
            -> AnalysisRun.Measurement
        {
            AnalysisRun.Measurement(
                metric: metric.name, round: round, at: now, phase: phase, value: value, message: message)
        }
        func fetch(_ provider: AnalysisManifest.Provider, side: AnalysisSide) async -> Fetched {
            await self.fetch(
                provider, metric: metric, analysis: analysis, round: round, side: side, rollout: rollout,
                target: target)
        }
        guard analysis.judge != nil, let baselineProvider = metric.baseline else {
            switch await fetch(metric.provider, side: .canary) {
            case .error(let message): return record(.error, nil, message)
            case .noData(let message): return record(.inconclusive, nil, message)
            case .value(let value): return judge(metric, value, record)
            }
        }
        // A judged metric: samples of both sides, compared once every round is in.
        var samples: [String: JSONValue] = [:]
        for (side, provider) in [(AnalysisSide.canary, metric.provider), (.baseline, baselineProvider)] {
            switch await fetch(provider, side: side) {
            case .error(let message): return record(.error, nil, "\(side): \(message)")
            case .noData(let message): return record(.inconclusive, nil, "\(side): \(message)")
            case .value(let value):
                do {
                    samples[side.rawValue] = .array(
                        try Self.samples(value, select: metric.select).map(JSONValue.double))
                } catch {
                    return record(.error, value, "\(side): \(error)")
                }
            }
        }
        return record(.success, .object(samples), "sampled")
    }

    /// A judged metric's numbers: a number, a list of numbers, or what `select` picks from JSON.
    static func samples(_ value: JSONValue, select: Condition?) throws -> [Double] {
        let picked = try select?.value(result: value) ?? value
        if let number = Condition.number(picked) { return [number] }
        if case .array(let items) = picked {
            let numbers = items.compactMap(Condition.number)
            if numbers.count == items.count { return numbers }
        }
        throw Condition.EvaluationError(
            description: "\(picked.canonicalJSON.prefix(80)) is not a number or a list of numbers"
                + (select == nil ? "; pick one with select (result.p99)" : ""))
    }

    private func fetch(
        _ provider: AnalysisManifest.Provider, metric: AnalysisManifest.Metric, analysis: AnalysisManifest,
        round: Int, side: AnalysisSide, rollout: Rollout, target: DesiredTarget
    ) async -> Fetched {
        let value: JSONValue
        switch provider {
        case .command(let argv, let timeout):
            let manifest = ExecutorManifest(
                name: "analysis-\(analysis.name)", location: metric.location, command: argv, timeout: timeout,
                environment: ["TIDE_METRIC": metric.name, "TIDE_ANALYSIS": analysis.name, "TIDE_SIDE": side.rawValue])
            let executor: any Executor
            do {
                executor = try executors.makeExecutor(for: manifest, revision: rollout.revision.hex)
            } catch {
                return .error("\(error)")
            }
            var request = ActionRequest(
                action: .measure, service: target.id.service, environment: target.id.environment,
                version: rollout.version, previousVersion: rollout.previousVersion, weight: rollout.weight,
                revision: rollout.revision.hex,
                actionID: ActionID(
                    target.id, rollout,
                    step: .measure(
                        analysis: analysis.name, round: round, metric: metric.name, baseline: side == .baseline)
                ).description,
                config: rollout.config)
            request.strategy = rollout.strategy.rawValue
            request.identifySides(of: rollout)
            let result = await executor.perform(request)
            guard result.succeeded else { return .error(result.summary) }
            let text = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty {
                return .noData("no data")
            } else if let number = Double(text) {
                guard number.isFinite else { return .noData("no data (\(text))") }
                value = .double(number)
            } else if let decoded = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) {
                value = decoded
            } else {
                return .error("output is neither a number nor JSON: \(text.prefix(80))")
            }
        case .prometheus, .http, .probe:
            let outcome: HTTPMeasurements.Outcome
            let fill = { (text: String) in Self.fill(text, target: target.id, rollout: rollout) }
            switch provider {
            case .prometheus(let address, let query, let timeout):
                outcome = await HTTPMeasurements.prometheus(
                    address: fill(address), query: fill(query), timeout: timeout)
            case .http(let url, let headers, let timeout):
                outcome = await HTTPMeasurements.http(url: fill(url), headers: headers, timeout: timeout)
            case .probe(let url, let requests, let concurrency, let timeout, let headers):
                outcome = await HTTPMeasurements.probe(
                    url: fill(url), requests: requests, concurrency: concurrency, timeout: timeout, headers: headers)
            case .command:
                return .error("unreachable")
            }
            switch outcome {
            case .failure(let error): return .error(error.description)
            case .success(nil): return .noData("no data")
            case .success(let measured?): value = measured
            }
        }
        if value == .null || value == .array([]) { return .noData("no data") }
        return .value(value)
    }

    /// `{{service}}`, `{{environment}}`, `{{version}}`, `{{previousVersion}}` and `{{weight}}` in a provider's
    /// URL or query, so one Analysis serves every target. (Names and versions are validated, URL-safe.)
    static func fill(_ text: String, target: TargetID, rollout: Rollout) -> String {
        guard text.contains("{{") else { return text }
        return text.replacingOccurrences(of: "{{service}}", with: target.service)
            .replacingOccurrences(of: "{{environment}}", with: target.environment)
            .replacingOccurrences(of: "{{version}}", with: rollout.version)
            .replacingOccurrences(of: "{{previousVersion}}", with: rollout.previousVersion ?? "")
            .replacingOccurrences(of: "{{weight}}", with: String(rollout.weight))
    }

    private func judge(
        _ metric: AnalysisManifest.Metric, _ value: JSONValue,
        _ record: (AnalysisRun.Measurement.Phase, JSONValue?, String) -> AnalysisRun.Measurement
    ) -> AnalysisRun.Measurement {
        do {
            let failed = try metric.failureCondition?.evaluate(result: value)
            let succeeded = try metric.successCondition?.evaluate(result: value)
            if failed == true {
                return record(.failure, value, "meets failureCondition \(metric.failureCondition?.text ?? "")")
            }
            switch (succeeded, failed) {
            case (true?, _): return record(.success, value, "meets successCondition")
            case (false?, nil):
                return record(.failure, value, "misses successCondition \(metric.successCondition?.text ?? "")")
            case (nil, false?): return record(.success, value, "misses failureCondition")
            default: return record(.inconclusive, value, "meets neither condition")
            }
        } catch {
            return record(.error, value, "\(error)")
        }
    }
}
