public import TideExecutors
public import TideManifest

extension Reconciler {

    /// One step of a rollout.
    public enum RolloutStep: Equatable, Sendable {
        /// An executor action, with the candidate's share of traffic (or of instances, for rolling).
        case action(ExecutorAction, weight: Int)
        /// Wait this many seconds, or (nil) until `tide promote`.
        case pause(Double?)
        /// Run the named Analysis.
        case analysis(String)
    }

    /// The steps of a rollout with `strategy`, from the first executor call to the last. Every strategy but
    /// recreate starts the candidate beside stable and checks it before it gets anything.
    ///
    /// - recreate: deploy (stop old, start new), health.
    /// - rolling: deploy the first batch, health; set-weight (share of instances replaced) and health per
    ///   batch; promote, health.
    /// - blue-green: deploy the preview, health, preview analysis; wait (autoPromotionAfter, or for
    ///   `tide promote` without autoPromotion); promote (switch all traffic), health, post-promotion analysis;
    ///   keep the old side for scaleDownDelay; scale-down.
    /// - canary: deploy at 0 %, health, the manifest's steps, promote, health.
    /// - shadow: deploy, health, mirror, wait `duration`, analysis; promote, health.
    /// - ab: deploy, health, split, wait `duration`, analysis (the comparison); promote, health.
    public static func steps(for strategy: StrategySpec) -> [RolloutStep] {
        let candidate: [RolloutStep] = [.action(.deploy, weight: 0), .action(.health, weight: 0)]
        let promote: [RolloutStep] = [.action(.promote, weight: 100), .action(.health, weight: 100)]
        switch strategy.type {
        case .recreate:
            return [.action(.deploy, weight: 100), .action(.health, weight: 100)]
        case .rolling:
            let batches = strategy.batches.isEmpty ? [100] : strategy.batches
            var steps: [RolloutStep] = [.action(.deploy, weight: batches[0]), .action(.health, weight: batches[0])]
            for batch in batches.dropFirst() where batch < 100 {
                steps += [.action(.setWeight, weight: batch), .action(.health, weight: batch)]
            }
            return steps + promote
        case .blueGreen:
            var steps = candidate
            if let preview = strategy.previewAnalysis { steps.append(.analysis(preview)) }
            if !strategy.autoPromotion {
                steps.append(.pause(nil))
            } else if strategy.autoPromotionAfter > 0 {
                steps.append(.pause(strategy.autoPromotionAfter))
            }
            steps += promote
            if let post = strategy.postPromotionAnalysis { steps.append(.analysis(post)) }
            if strategy.scaleDownDelay > 0 { steps.append(.pause(strategy.scaleDownDelay)) }
            return steps + [.action(.scaleDown, weight: 100)]
        case .canary:
            let walk = strategy.steps.map { step -> RolloutStep in
                switch step {
                case .setWeight(let weight): .action(.setWeight, weight: weight)
                case .pause(let seconds): .pause(seconds)
                case .analysis(let name): .analysis(name)
                }
            }
            return candidate + walk + promote
        case .shadow, .ab:
            var steps = candidate
            if strategy.type == .shadow {
                steps.append(.action(.mirror, weight: strategy.mirror))
            } else if case .userKey(_, let percent) = strategy.match {
                steps.append(.action(.split, weight: percent))
            } else {
                steps.append(.action(.split, weight: 0))
            }
            if strategy.duration > 0 { steps.append(.pause(strategy.duration)) }
            if let analysis = strategy.analysis { steps.append(.analysis(analysis)) }
            return steps + promote
        }
    }

    /// What a traffic action needs besides its weight.
    static func traffic(for action: ExecutorAction, strategy: StrategySpec) -> JSONValue? {
        switch action {
        case .split: strategy.match.map { .object(["match": $0.json]) }
        case .mirror: .object(["mirror": .int(Int64(strategy.mirror))])
        default: nil
        }
    }
}
