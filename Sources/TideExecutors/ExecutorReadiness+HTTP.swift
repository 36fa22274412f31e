import Foundation
import TideManifest

extension ExecutorReadiness {
    /// http: the secrets its headers and signature name can be read, and `caFile` is a readable file. Whether the
    /// endpoint answers is the first action's business (a readiness check does not POST an action).
    func httpEndpoint(_ executor: ExecutorManifest) -> ReadinessCheck {
        let owner = "\(executor.name) (http)"
        guard case .http(let spec) = executor.kind else {
            return ReadinessCheck(name: "executor endpoint", pass: false, detail: "\(owner): not an http executor")
        }
        var problems: [String] = []
        let secrets: [(String, PasswordSource)] =
            spec.headers.sorted { $0.key < $1.key }.compactMap { name, value in
                if case .secret(let source) = value { ("header \(name)", source) } else { nil }
            } + (spec.secret.map { [("signing key", $0)] } ?? [])
        for (what, source) in secrets {
            do {
                _ = try SecretReading.read(source, what: what)
            } catch {
                problems.append("\(error)")
            }
        }
        if let caFile = spec.caFile {
            let path = caFile.hasPrefix("/") ? caFile : (workingDirectory as NSString).appendingPathComponent(caFile)
            if !FileManager.default.isReadableFile(atPath: path) { problems.append("cannot read caFile \(path)") }
        }
        guard problems.isEmpty else {
            return ReadinessCheck(
                name: "executor endpoint", pass: false, detail: "\(owner): " + problems.joined(separator: "; "))
        }
        let signed = spec.secret == nil ? "unsigned" : "signed"
        return ReadinessCheck(
            name: "executor endpoint", pass: true,
            detail: "\(owner): POST \(DatabaseURL.redacted(spec.url)) (\(signed), \(secrets.count) secret(s) readable)")
    }
}
