import Foundation
import Synchronization
import TideManifest

/// Executor processes an interrupted Tide left running.
///
/// Every executor process runs in a session of its own with `TIDE_ACTION_ID` in its environment (its children
/// inherit both). When Tide is killed (`kill -9`, a crash, the machine's OOM killer) those processes live on; the
/// next pass re-runs the interrupted step with the same action id, and without this an old `set-weight` could
/// finish after the newer one. So before a pass runs anything, the processes whose environment names an action
/// recorded as started and never finished are found under `/proc`, their process groups get SIGTERM, then SIGKILL
/// after `grace` seconds, and the pass waits until they are gone.
///
/// What executors can rely on: a step's action never runs twice at once. What they must not do: leave the
/// session or clear `TIDE_ACTION_ID` for processes that belong to the step (a process Tide cannot see is not
/// stopped), or run as another user (Tide reads only its own user's processes).
public enum ActionProcesses {
    public struct Found: Sendable, Hashable {
        public var pid: Int32
        public var actionID: String
    }

    /// Processes (other than this one) whose environment sets `TIDE_ACTION_ID` to one of `actionIDs`.
    public static func running(actionIDs: Set<String>, procRoot: String = "/proc") -> [Found] {
        guard !actionIDs.isEmpty,
            let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot)
        else { return [] }
        let me = getpid()
        var found: [Found] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != me, !isGone(pid, procRoot: procRoot),
                let id = actionID(of: pid, procRoot: procRoot), actionIDs.contains(id),
                !belongsToLiveTide(pid, procRoot: procRoot)
            else { continue }
            found.append(Found(pid: pid, actionID: id))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// Set on plugin processes (long-lived, serving many actions, so without a `TIDE_ACTION_ID`): the Tide process
    /// that started them, as `PID:START` (its start time in clock ticks since boot, so a reused pid is told apart).
    public static let pluginOwnerVariable = "TIDE_PLUGIN_OWNER"

    /// The state this process reconciles (its install id), set before a pass starts executors: plugins are
    /// marked with it, and only this install's orphaned plugins are stopped — another install on the machine
    /// looks after its own.
    public static func setInstall(_ id: String) { install.withLock { $0 = id } }
    private static let install = Mutex("")

    /// This process, as `pluginOwnerVariable` names it: `PID:START:INSTALL`.
    public static var owner: String { "\(getpid()):\(startTime(getpid()) ?? "0"):\(install.withLock { $0 })" }

    /// Plugin processes whose Tide is gone (killed while they served it): they may still be in the middle of an
    /// action that is about to run again.
    public static func orphanedPlugins(procRoot: String = "/proc") -> [Found] {
        let ours = install.withLock { $0 }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return [] }
        var found: [Found] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(), !isGone(pid, procRoot: procRoot),
                let owner = variable(pluginOwnerVariable, of: pid, procRoot: procRoot)
            else { continue }
            let parts = owner.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, let ownerPID = Int32(parts[0]), parts[2] == ours else { continue }
            let alive =
                !isGone(ownerPID, procRoot: procRoot) && startTime(ownerPID, procRoot: procRoot) == String(parts[1])
            if !alive { found.append(Found(pid: pid, actionID: "plugin of \(owner)")) }
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// Whether `pid` belongs to an executor session a running Tide started (another install reconciling the same
    /// repository runs the same action ids): its session leader's parent is still a `tide` process. An orphan's
    /// leader was handed to init (or a subreaper) when its Tide died.
    static func belongsToLiveTide(_ pid: Int32, procRoot: String = "/proc") -> Bool {
        let leader = getsid(pid)
        guard leader > 0, let parent = statField(1, of: leader, procRoot: procRoot).flatMap({ Int32($0) }),
            parent > 1
        else { return false }
        if parent == getpid() { return true }
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(procRoot)/\(parent)/exe")
        else { return false }
        return (executable as NSString).lastPathComponent.hasPrefix("tide")
    }

    /// Field `index` (0: the state, 1: the parent, …, 19: the start time) of `/proc/PID/stat`, counted after the
    /// last `)`: the command before it may contain anything.
    static func statField(_ index: Int, of pid: Int32, procRoot: String = "/proc") -> String? {
        ProcessTable.statField(index, of: pid, procRoot: procRoot)
    }

    /// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
    static func startTime(_ pid: Int32, procRoot: String = "/proc") -> String? {
        statField(19, of: pid, procRoot: procRoot)
    }

    /// Stops `processes`: SIGTERM to each one's process group (or the process alone, when it shares this
    /// process's group), SIGKILL to whatever is left after `grace` seconds; returns once all are gone or
    /// `grace` + 5 seconds have passed, with the pids still running then (normally none).
    public static func stop(_ processes: [Found], grace: Double = 10) async -> [Int32] {
        let pids = processes.map(\.pid)
        func signal(_ signal: Int32) {
            for pid in pids where !isGone(pid) {
                let group = getpgid(pid)
                if group > 1, group != getpgrp() { kill(-group, signal) } else { kill(pid, signal) }
            }
        }
        signal(SIGTERM)
        if await waitUntilGone(pids, seconds: grace) { return [] }
        signal(SIGKILL)
        _ = await waitUntilGone(pids, seconds: 5)
        return pids.filter { !isGone($0) }
    }

    private static func waitUntilGone(_ pids: [Int32], seconds: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if pids.allSatisfy({ isGone($0) }) { return true }
            await Monotonic.pause(seconds: 0.05)
        }
        return pids.allSatisfy { isGone($0) }
    }

    /// Exited (a zombie waiting for its parent counts as gone: it does nothing more) or no longer there.
    static func isGone(_ pid: Int32, procRoot: String = "/proc") -> Bool {
        guard let state = statField(0, of: pid, procRoot: procRoot) else { return true }
        return state == "Z" || state == "X"
    }

    /// `TIDE_ACTION_ID` from the process's initial environment, when this user may read it.
    static func actionID(of pid: Int32, procRoot: String = "/proc") -> String? {
        variable("TIDE_ACTION_ID", of: pid, procRoot: procRoot)
    }

    /// A variable of the process's initial environment, when this user may read it.
    static func variable(_ name: String, of pid: Int32, procRoot: String = "/proc") -> String? {
        guard let data = read("\(procRoot)/\(pid)/environ") else { return nil }
        let prefix = Array("\(name)=".utf8)
        for variable in data.split(separator: 0, omittingEmptySubsequences: true)
        where variable.starts(with: prefix) {
            return String(decoding: variable.dropFirst(prefix.count), as: UTF8.self)
        }
        return nil
    }

    /// A /proc file, read to its end: they report a size of 0, so a read sized from `stat` would get nothing.
    private static func read(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.readToEnd()
    }
}
