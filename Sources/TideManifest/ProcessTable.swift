import Foundation

/// Reads `/proc`: a process's `stat` fields, and whether a process recorded earlier (pid and start time) is still
/// that process — a pid alone may have been reused.
public enum ProcessTable {
    /// Field `index` of `/proc/PID/stat` after the command name (0 is the state, 1 the parent pid, 19 the start
    /// time in clock ticks since boot), or nil when the process is gone.
    public static func statField(_ index: Int, of pid: Int32, procRoot: String = "/proc") -> String? {
        guard let data = FileManager.default.contents(atPath: "\(procRoot)/\(pid)/stat") else { return nil }
        let stat = String(decoding: data, as: UTF8.self)
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > index ? String(fields[index]) : nil
    }

    /// When process `pid` started, in clock ticks since boot.
    public static func startTime(_ pid: Int32, procRoot: String = "/proc") -> UInt64? {
        statField(19, of: pid, procRoot: procRoot).flatMap { UInt64($0) }
    }

    /// Whether process `pid`, which started at `start`, still runs (and is not a zombie).
    public static func isRunning(_ pid: Int32, startedAt start: UInt64, procRoot: String = "/proc") -> Bool {
        guard let state = statField(0, of: pid, procRoot: procRoot), state != "Z", state != "X" else { return false }
        return startTime(pid, procRoot: procRoot) == start
    }

    /// This host's name.
    public static var hostName: String {
        ProcessInfo.processInfo.hostName
    }
}
