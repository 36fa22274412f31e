import TideGit

/// What the fuzz targets (`scripts/fuzz`, libFuzzer) run for one input, and what the corpus replay test runs for
/// every input kept in `Fuzz/corpus`: anything is allowed to come back (documents, diagnostics, errors), nothing
/// may trap, hang or overflow the stack.
public enum FuzzEntry {
    /// One file: decoded as a manifest, then built as the whole desired state (references, cycles, policies).
    public static func manifest(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let decoded = ManifestDecoder.decodeNamingBroken(file: "fuzz.yaml", text: text)
        let location = SourceLocation(file: ".", line: 1, column: 1)
        let built = DesiredStateBuilder.build(
            documents: decoded.documents, revision: nil, emptyLocation: location, broken: decoded.broken)
        for diagnostic in decoded.diagnostics { _ = diagnostic.description }
        if case .failure(let error) = built { _ = error.description }
    }

    /// One `--repo` text: read as a location (a path, or a remote URL that holds no credential), redacted as
    /// every URL Tide shows is. A remote URL that is accepted must print as its redaction, and a refusal must
    /// not echo a password the text carried in its user information.
    public static func remoteURL(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let shown = URLRedaction.redacted(text)
        do {
            if case .remote(let remote) = try RepositoryLocation(text) {
                precondition(remote.description == remote.redacted)
            }
        } catch {
            _ = error.description
        }
        _ = URLRedaction.redacted(shown)
    }

    /// Results a condition is evaluated against: the shapes metric providers return, and the edges of numbers.
    static let results: [JSONValue] = [
        .null, .bool(true), .int(0), .int(Int64.max), .int(Int64.min), .double(1e308), .double(-0.0),
        .double(.nan), .double(.infinity), .string("0.5"), .array([]), .array([.int(1), .double(2.5), .null]),
        .object([
            "v": .array([.int(3), .int(1), .int(2)]), "n": .int(5), "i": .double(1e300), "p99": .double(0.2),
            "errors": .int(3), "requests": .int(0), "name": .string("api"), "nested": .object(["x": .array([.null])]),
        ]),
    ]

    /// One condition: parsed, then evaluated against every result in `results`.
    public static func condition(_ bytes: [UInt8]) {
        guard let condition = try? Condition(String(decoding: bytes, as: UTF8.self)) else { return }
        for result in results {
            _ = try? condition.evaluate(result: result)
            _ = try? condition.value(result: result)
        }
    }
}
