import Foundation
internal import Subprocess
import Synchronization
public import TideManifest

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// The plugin executor (DESIGN.md §4): one long-lived process per Executor manifest, started on its first action
/// and kept for the rest of the Tide process, spoken to in JSON lines.
///
/// Each action is one line on the plugin's stdin — the same object the command executor gets on stdin — and the
/// plugin answers with one line on stdout: `{"actionId": "…", "ok": true}`, optionally with `"output"` (text or
/// JSON: what an analysis `measure` returns), or `{"actionId": "…", "ok": false, "error": "why"}`. Logs go to
/// stderr; Tide keeps its last lines for failure messages. A plugin that exits, answers something else or takes
/// longer than the manifest's `timeout` fails the action; a timed-out plugin's process group is killed, and the
/// next action starts a fresh process. Actions reach a plugin one at a time.
public struct PluginExecutor: Executor {
    let host: PluginHost

    public init(
        manifest: ExecutorManifest, workingDirectory: String, environment: ExecutorEnvironment = .configured
    ) {
        host = PluginHost.shared(manifest: manifest, workingDirectory: workingDirectory, environment: environment)
    }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        await host.perform(request)
    }
}

/// One plugin process and the queue of actions waiting for it.
final class PluginHost: Sendable {
    /// Hosts by manifest (name, argv, environment, working directory): executors made for the same manifest
    /// share one process.
    private static let hosts = Mutex<[String: PluginHost]>([:])

    /// The host for `manifest`. A new one for an executor whose definition changed (another argv — another
    /// revision's program — or environment) retires the others of the same name: their process ends once the
    /// actions it was given are answered, and an action that still reaches one starts it again.
    static func shared(
        manifest: ExecutorManifest, workingDirectory: String, environment: ExecutorEnvironment
    ) -> PluginHost {
        let key =
            ([manifest.name, workingDirectory] + manifest.command + environment.passThrough
            + manifest.environment.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }).joined(separator: "\u{0}")
        let (host, retired) = hosts.withLock { hosts -> (PluginHost, [PluginHost]) in
            if let host = hosts[key] { return (host, []) }
            let host = PluginHost(manifest: manifest, workingDirectory: workingDirectory, environment: environment)
            let others = hosts.filter { $0.value.manifest.name == manifest.name }
            for name in others.keys { hosts[name] = nil }
            hosts[key] = host
            return (host, Array(others.values))
        }
        for old in retired { old.retire() }
        return host
    }

    /// Lets the process end once it has answered what it was given (it reads end of file then).
    func retire() {
        guard let generation = state.withLock({ $0.running?.generation }) else { return }
        detach(generation)
    }

    /// What came back for one action.
    enum Reply: Sendable {
        case line(String)
        /// The process went away before answering; why.
        case gone(String)
        /// The process could not be started.
        case notStarted(String)
    }

    struct Pending: Sendable {
        var line: String
        var reply: AsyncStream<Reply>.Continuation

        func answer(_ value: Reply) {
            reply.yield(value)
            reply.finish()
        }
    }

    private struct Running {
        var generation: Int
        var queue: AsyncStream<Pending>.Continuation
        var task: Task<Void, Never>
    }

    private struct State {
        var running: Running?
        var generation = 0
    }

    let manifest: ExecutorManifest
    let workingDirectory: String
    let environment: ExecutorEnvironment
    private let state = Mutex(State())
    /// The last bytes the plugin wrote to stderr.
    private let stderrTail = Mutex<[UInt8]>([])
    /// The action the process was given when it went away: answered once its exit status is known.
    private let unanswered = Mutex<Pending?>(nil)
    static let stderrLimit = 8 * 1024

    init(manifest: ExecutorManifest, workingDirectory: String, environment: ExecutorEnvironment) {
        self.manifest = manifest
        self.workingDirectory = workingDirectory
        self.environment = environment
    }

    func perform(_ request: ActionRequest) async -> ActionResult {
        _ = ignoringBrokenPipes
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let (replies, reply) = AsyncStream<Reply>.makeStream()
        let generation = enqueue(Pending(line: request.jsonLine(), reply: reply))
        let timeout = manifest.timeout
        let answer: Reply? = await withTaskGroup(of: Reply?.self) { group in
            group.addTask {
                for await value in replies { return value }
                return nil
            }
            group.addTask {
                await Monotonic.pause(seconds: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        switch answer {
        case nil:
            stop(generation)
            return ActionResult(
                outcome: .timedOut(seconds: timeout),
                standardError: tail()
                    + "tide: the plugin did not answer within \(ManifestDuration.format(timeout)); "
                    + "killed its process group\n", duration: elapsed())
        case .gone(let why)?:
            // The plugin went away (it crashed, or was stopped): the next action starts a fresh one. Not the
            // candidate's doing: transient.
            return ActionResult(outcome: .unavailable(why), standardError: tail(), duration: elapsed())
        case .notStarted(let why)?:
            return ActionResult(outcome: .couldNotStart(why), standardError: tail(), duration: elapsed())
        case .line(let line)?:
            let result = Self.parse(line, actionID: request.actionID)
            if case .failed(let why) = result.outcome, why.hasPrefix("protocol") {
                // Out of step with the plugin: start over with a fresh process.
                stop(generation)
            }
            return ActionResult(
                outcome: result.outcome, standardOutput: result.output, standardError: tail(), duration: elapsed())
        }
    }

    /// Reads one answer line.
    static func parse(_ line: String, actionID: String) -> (outcome: ActionResult.Outcome, output: String) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)),
            case .object(let answer) = value
        else {
            return (
                .failed("protocol: the plugin answered with something other than a JSON object: \(line.prefix(120))"),
                ""
            )
        }
        guard case .string(let id)? = answer["actionId"], id == actionID else {
            return (
                .failed(
                    "protocol: the plugin answered for another action (\(answer["actionId"]?.canonicalJSON ?? "no actionId"), expected \(actionID))"
                ), ""
            )
        }
        let output: String =
            switch answer["output"] {
            case nil, .null?: ""
            case .string(let text)?: text
            case let other?: other.canonicalJSON
            }
        switch answer["ok"] {
        case .bool(true)?: return (.succeeded, output)
        case .bool(false)?:
            let why =
                (answer["error"]).flatMap { if case .string(let text) = $0 { text } else { nil } }
                ?? "the plugin reported a failure"
            // `"retry": true`: what the plugin talks to is unavailable right now (transient, retried).
            if case .bool(true)? = answer["retry"] { return (.unavailable(why), output) }
            return (.failed(why), output)
        default:
            return (.failed("protocol: the answer has no \"ok\": true or false"), output)
        }
    }

    private func tail() -> String {
        stderrTail.withLock { String(decoding: $0, as: UTF8.self) }
    }

    /// Queues an action, starting the process first if none runs. Returns the process' generation.
    private func enqueue(_ pending: Pending) -> Int {
        state.withLock { state in
            if let running = state.running {
                running.queue.yield(pending)
                return running.generation
            }
            state.generation += 1
            let generation = state.generation
            let (queue, continuation) = AsyncStream<Pending>.makeStream()
            continuation.yield(pending)
            let task = Task { await self.serve(queue, generation: generation) }
            state.running = Running(generation: generation, queue: continuation, task: task)
            return generation
        }
    }

    /// Forgets the process of `generation` without stopping it (it is going away by itself): the next action
    /// starts a new one.
    private func detach(_ generation: Int) {
        state.withLock { state in
            guard let running = state.running, running.generation == generation else { return }
            state.running = nil
            running.queue.finish()
        }
    }

    /// Forgets the process of `generation` and tears it down (SIGTERM to its process group, SIGKILL two seconds
    /// later); actions still queued for it are answered as gone.
    private func stop(_ generation: Int) {
        state.withLock { state in
            guard let running = state.running, running.generation == generation else { return }
            state.running = nil
            running.queue.finish()
            running.task.cancel()
        }
    }

    private func serve(_ queue: AsyncStream<Pending>, generation: Int) async {
        var variables: [Environment.Key: String] = [:]
        for (name, value) in environment.environment(
            manifest.environment.merging(
                ["TIDE_PLUGIN_PROTOCOL": "1", ActionProcesses.pluginOwnerVariable: ActionProcesses.owner]
            ) { $1 })
        {
            if let key = Environment.Key(rawValue: name) { variables[key] = value }
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let program = manifest.command[0]
        let executable: Executable =
            CommandExecutor.programPath(program, workingDirectory: workingDirectory).map { .path(FilePath($0)) }
            ?? .name(program)
        let configuration = Configuration(
            executable: executable, arguments: Arguments(Array(manifest.command.dropFirst())),
            environment: .custom(variables), workingDirectory: FilePath(workingDirectory),
            platformOptions: options)
        stderrTail.withLock { $0 = [] }

        var why = "the plugin exited"
        do {
            let result = try await run(configuration, input: .inputWriter, output: .sequence, error: .sequence) {
                execution in
                async let drained: Void = drain(execution.standardError)
                var lines = execution.standardOutput.strings().makeAsyncIterator()
                let writer = execution.standardInputWriter
                for await pending in queue {
                    if case let line?? = try? await (writer.write(pending.line), lines.next()).1 {
                        pending.answer(.line(line.trimmingCharacters(in: .whitespacesAndNewlines)))
                        continue
                    }
                    // Gone: answered once the exit status is known; new actions go to a new process.
                    unanswered.withLock { $0 = pending }
                    detach(generation)
                    break
                }
                try? await writer.finish()
                await drained
            }
            switch result.terminationStatus {
            case .exited(let code): why = "the plugin exited with status \(code) before answering"
            case .signaled(let signal): why = "the plugin was killed by signal \(signal) before answering"
            }
        } catch {
            let cancelled = Task.isCancelled
            detach(generation)
            let reason =
                cancelled
                ? "the plugin was stopped"
                : "cannot start the plugin: \((error as? SubprocessError).map(\.description) ?? "\(error)")"
            unanswered.withLock { $0.take() }?.answer(.gone(reason))
            for await pending in queue { pending.answer(cancelled ? .gone(reason) : .notStarted(reason)) }
            return
        }
        stop(generation)
        unanswered.withLock { $0.take() }?.answer(.gone(why))
        for await pending in queue { pending.answer(.gone(why)) }
    }

    private func drain(_ sequence: SubprocessOutputSequence) async {
        do {
            for try await chunk in sequence {
                chunk.withUnsafeBytes { bytes in
                    stderrTail.withLock { tail in
                        tail.append(contentsOf: bytes)
                        if tail.count > Self.stderrLimit { tail.removeFirst(tail.count - Self.stderrLimit) }
                    }
                }
            }
        } catch {
            // The plugin is gone; what it wrote is kept.
        }
    }
}
