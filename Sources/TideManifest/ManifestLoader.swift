import Foundation
public import TideGit

/// Parses the manifests of a source into desired state, caching each file's parse by (path, blob id): a file
/// whose content did not change between two revisions is never parsed twice in one process.
public final class ManifestLoader: @unchecked Sendable {
    private struct CacheKey: Hashable {
        var path: String
        var blob: ObjectID
    }

    private struct ParsedFile {
        var documents: [ManifestDocument]
        var diagnostics: [Diagnostic]
        var broken: Set<String> = []
    }

    /// Manifests larger than this are refused rather than parsed.
    public static let maximumFileSize = 4 << 20

    // Guarded by `lock`.
    private var cache: [CacheKey: ParsedFile] = [:]
    private var parseCount = 0
    private let lock = NSLock()

    public init() {}

    /// The blobs this loader has read and parsed (objects are immutable: these were readable once, so they are).
    public var cachedBlobs: Set<ObjectID> {
        lock.withLock { Set(cache.keys.map(\.blob)) }
    }

    /// How many files were parsed (cache misses) so far.
    public var filesParsed: Int {
        lock.withLock { parseCount }
    }

    public static func isManifestPath(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return !name.hasPrefix(".") && (name.hasSuffix(".yaml") || name.hasSuffix(".yml"))
    }

    /// Loads and validates the desired state. Throws `ManifestError` listing every problem, or the error of the
    /// source (a git error) when the manifests cannot be read at all.
    /// Files that look like manifests but are not read, each with why: symbolic links (their blob is the link's
    /// target text; only regular files are manifests), and `.YAML`/`.YML` in other cases (manifests end in
    /// lower-case `.yaml` or `.yml`, as tools and editors that match them expect).
    static func skipped(_ files: [TreeFile]) -> [Diagnostic] {
        files.sorted { $0.path < $1.path }.compactMap { file in
            let location = SourceLocation(file: file.path, line: 1, column: 1)
            if file.isSubmodule {
                return Diagnostic(
                    location,
                    "a git submodule (commit \(file.blob.short) of another repository): its manifests are not read — "
                        + "Tide reads only this repository's files")
            }
            if file.isSymlink && isManifestPath(file.path) {
                return Diagnostic(location, "a symbolic link, not a manifest: skipped (only regular files are read)")
            }
            let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
            let lower = name.lowercased()
            if !name.hasPrefix("."), !isManifestPath(file.path), lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
                return Diagnostic(
                    location, "not read: manifests end in .yaml or .yml in lower case (rename it to read it)")
            }
            return nil
        }
    }

    public func load(from source: some ManifestSource) throws -> DesiredState {
        let all = try source.files()
        let files = all.filter { Self.isManifestPath($0.path) && !$0.isSymlink && !$0.isSubmodule }.sorted {
            $0.path < $1.path
        }
        let parsedFiles = try parseAll(files, from: source)
        var documents: [ManifestDocument] = []
        var diagnostics: [Diagnostic] = []
        var broken: Set<String> = []
        for parsed in parsedFiles {
            documents += parsed.documents
            diagnostics += parsed.diagnostics
            broken.formUnion(parsed.broken)
        }
        let emptyLocation = SourceLocation(file: source.root.isEmpty ? "." : source.root, line: 1, column: 1)
        switch DesiredStateBuilder.build(
            documents: documents, revision: source.revision,
            emptyLocation: diagnostics.contains { $0.severity == .error } ? nil : emptyLocation, broken: broken)
        {
        case .success(var state) where diagnostics.isEmpty:
            let files = RevisionFiles.byPath(all, root: source.root)
            let problems = Self.revisionPrograms(of: state, files: files)
            guard problems.isEmpty else { throw ManifestError(diagnostics: problems) }
            let digests = state.executors.mapValues { $0.digest(files: files) }
            // One assignment (the index is rebuilt once, not once per target).
            state.targets = state.targets.map { target in
                var target = target
                target.executorDigest = digests[target.executor] ?? ""
                return target
            }
            state.warnings += Self.skipped(all)
            return state
        case .success:
            throw ManifestError(diagnostics: diagnostics)
        case .failure(let error):
            // Parse errors and whole-state problems together, so one pass lists everything; references to
            // documents that failed to parse are left out (they are not undefined, just broken).
            throw ManifestError(diagnostics: diagnostics + error.diagnostics)
        }
    }

    /// Programs named by a relative path (executors' commands, nginx's test and reload, analysis `command`
    /// providers) that are not executable files of the revision under the manifest root (see `RevisionFiles`).
    static func revisionPrograms(of state: DesiredState, files: [String: TreeFile]) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for executor in state.executors.values {
            for (program, location) in executor.revisionPrograms {
                guard let problem = RevisionFiles.problem(with: program, in: files) else { continue }
                let field = executor.fieldLocations.first { $0.value == location }?.key ?? "command"
                found.append(Diagnostic(location, "Executor '\(executor.name)': spec.\(field): \(problem)"))
            }
        }
        for analysis in state.analyses.values {
            for metric in analysis.metrics {
                for provider in [metric.provider] + (metric.baseline.map { [$0] } ?? []) {
                    guard case .command(let argv, _) = provider, let program = argv.first,
                        let problem = RevisionFiles.problem(with: program, in: files)
                    else { continue }
                    found.append(
                        Diagnostic(
                            metric.location,
                            "Analysis '\(analysis.name)': metric '\(metric.name)': provider command: \(problem)"))
                }
            }
        }
        return Array(Set(found)).sorted()
    }

    /// Every file's parse, in order: cache hits as they are, misses read (sequentially: libgit2 access is
    /// serialised anyway) and then decoded on every core.
    private func parseAll(_ files: [TreeFile], from source: some ManifestSource) throws -> [ParsedFile] {
        var results: [ParsedFile?] = lock.withLock { files.map { cache[CacheKey(path: $0.path, blob: $0.blob)] } }
        let missing = results.indices.filter { results[$0] == nil }
        if missing.isEmpty { return results.map { $0! } }
        let contents = try missing.map { try source.contents(of: files[$0].blob) }
        let decoded = UnsafeMutableBufferPointer<ParsedFile?>.allocate(capacity: missing.count)
        decoded.initialize(repeating: nil)
        defer { decoded.deallocate() }
        let decode = { (k: Int) in decoded[k] = Self.decode(files[missing[k]], bytes: contents[k]) }
        if missing.count < 64 {
            for k in missing.indices { decode(k) }
        } else {
            // Each iteration writes its own slot only.
            nonisolated(unsafe) let write = decode
            DispatchQueue.concurrentPerform(iterations: missing.count) { write($0) }
        }
        lock.withLock {
            for (k, index) in missing.enumerated() {
                results[index] = decoded[k]
                cache[CacheKey(path: files[index].path, blob: files[index].blob)] = decoded[k]
            }
            parseCount += missing.count
        }
        return results.map { $0! }
    }

    /// A UTF-8 byte order mark, which some editors write, is not part of the YAML: positions count from after it.
    static func withoutByteOrderMark(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.dropFirst(3) : bytes[...]
    }

    private static func decode(_ file: TreeFile, bytes: [UInt8]) -> ParsedFile {
        let parsed: ParsedFile
        let start = SourceLocation(file: file.path, line: 1, column: 1)
        if bytes.count > Self.maximumFileSize {
            parsed = ParsedFile(
                documents: [],
                diagnostics: [
                    Diagnostic(start, "manifest is \(bytes.count) bytes; the limit is \(Self.maximumFileSize)")
                ])
        } else if let text = String(validating: Self.withoutByteOrderMark(bytes), as: UTF8.self) {
            let result = ManifestDecoder.decodeNamingBroken(file: file.path, text: text)
            parsed = ParsedFile(documents: result.documents, diagnostics: result.diagnostics, broken: result.broken)
        } else {
            parsed = ParsedFile(documents: [], diagnostics: [Diagnostic(start, "manifest is not valid UTF-8")])
        }
        return parsed
    }
}
