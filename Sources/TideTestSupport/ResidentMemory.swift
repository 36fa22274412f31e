import Foundation

/// The resident memory of a process (this one when `pid` is nil), in whole megabytes, from `/proc/PID/status`
/// (`VmRSS`); 0 when it cannot be read.
public func residentMegabytes(of pid: Int32? = nil) -> Int {
    let path = "/proc/\(pid.map(String.init) ?? "self")/status"
    let status = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}
