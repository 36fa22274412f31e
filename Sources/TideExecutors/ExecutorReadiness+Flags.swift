import Foundation
import TideManifest

extension ExecutorReadiness {
    /// flags: the file can be written whole and renamed over (its directory is writable, or can be created), and
    /// what is there already is a flags file tide can update.
    func flagsFile(_ executor: ExecutorManifest) -> ReadinessCheck {
        let owner = "\(executor.name) (flags)"
        let path = resolve(executor.path ?? "flags.json")
        let directory = (path as NSString).deletingLastPathComponent
        func fail(_ why: String) -> ReadinessCheck {
            ReadinessCheck(name: "executor flags file", pass: false, detail: "\(owner): \(why)")
        }
        if FileManager.default.fileExists(atPath: path) {
            let file: FlagsFile
            do {
                file = try FlagsFile.read(path)
            } catch {
                return fail(
                    "\(path) is not a flags file tide can update (\(error)): move it away, or point spec.path "
                        + "elsewhere")
            }
            if let why = Self.notWritableDirectory(directory) {
                return fail("\(path) is written to a temporary file and renamed, but \(directory) \(why)")
            }
            return ReadinessCheck(
                name: "executor flags file", pass: true,
                detail: "\(owner): \(path) (\(file.format), \(file.targets.count) targets), in a writable directory")
        }
        let existing = Self.nearestExisting(directory)
        if let why = Self.notWritableDirectory(existing) {
            return fail(
                "\(path) does not exist yet and cannot be created: \(existing) \(why); make it writable or point "
                    + "spec.path elsewhere")
        }
        let created = existing == directory ? "" : " (and \(directory))"
        return ReadinessCheck(
            name: "executor flags file", pass: true,
            detail: "\(owner): \(path) does not exist yet; the first action creates it\(created) in \(existing), "
                + "which is writable")
    }
}
