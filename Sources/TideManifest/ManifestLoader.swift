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

    /// A commit's manifests (under one root) load to the same desired state or the same problems every time: its
    /// id names its whole tree. The last few are kept, newest last, so a pass that reads the revisions live targets
    /// came from (their stable side, their executors) builds each once, not once per target.
    private struct Loaded {
        var revision: ObjectID
        var root: String
        var result: Result<DesiredState, ManifestError>
    }
    private static let loadedKept = 4

    /// The last valid build, for the next revision to start from (`changedServices`).
    private struct LastBuilt {
        var root: String
        /// The manifest files it was built from, in path order.
        var files: [TreeFile]
        var built: DesiredStateBuilder.Built
    }

    // Guarded by `lock`.
    private var lastBuilt: LastBuilt?
    private var loaded: [Loaded] = []
    private var cache: [CacheKey: ParsedFile] = [:]
    private var parseCount = 0
    private var incrementalCount = 0
    private let lock = NSLock()

    public init() {}

    /// The blobs this loader has read and parsed (objects are immutable: these were readable once, so they are).
    public var cachedBlobs: Set<ObjectID> {
        lock.withLock { Set(cache.keys.map(\.blob)) }
    }

    /// How many revisions were built from the last valid one (`changedServices`) rather than in full.
    public var incrementalBuilds: Int {
        lock.withLock { incrementalCount }
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
        guard let revision = source.revision else { return try build(from: source) }
        let root = source.root
        let hit = lock.withLock { () -> Loaded? in
            guard let place = loaded.lastIndex(where: { $0.revision == revision && $0.root == root }) else {
                return nil
            }
            let hit = loaded.remove(at: place)
            loaded.append(hit)  // the most recently used last: the revision every pass reads stays
            return hit
        }
        if let hit { return try hit.result.get() }
        let result: Result<DesiredState, ManifestError>
        do {
            result = .success(try build(from: source))
        } catch let error as ManifestError {
            result = .failure(error)
        }  // any other error (an object that cannot be read) is not the commit's answer: nothing is kept
        lock.withLock {
            loaded.removeAll { $0.revision == revision && $0.root == root }
            loaded.append(Loaded(revision: revision, root: root, result: result))
            if loaded.count > Self.loadedKept { loaded.removeFirst() }
        }
        return try result.get()
    }

    private func build(from source: some ManifestSource) throws -> DesiredState {
        let all = try source.files()
        let files = all.filter { Self.isManifestPath($0.path) && !$0.isSymlink && !$0.isSubmodule }.sorted {
            $0.path < $1.path
        }
        if let built = try changedServices(files, from: source) {
            return try finished(built.state, all: all, root: source.root)
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
        switch DesiredStateBuilder.built(
            documents: documents, revision: source.revision,
            emptyLocation: diagnostics.contains { $0.severity == .error } ? nil : emptyLocation, broken: broken)
        {
        case .success(let built) where diagnostics.isEmpty:
            let state = try finished(built.state, all: all, root: source.root)
            lock.withLock { lastBuilt = LastBuilt(root: source.root, files: files, built: built) }
            return state
        case .success:
            throw ManifestError(diagnostics: diagnostics)
        case .failure(let error):
            // Parse errors and whole-state problems together, so one pass lists everything; references to
            // documents that failed to parse are left out (they are not undefined, just broken).
            throw ManifestError(diagnostics: diagnostics + error.diagnostics)
        }
    }

    /// What every build of a valid state ends with: the programs executors name are in the revision, executors'
    /// digests (they cover the revision's files their programs come from), and the files skipped.
    private func finished(_ built: DesiredState, all: [TreeFile], root: String) throws -> DesiredState {
        var state = built
        let files = RevisionFiles.byPath(all, root: root)
        let problems = Self.revisionPrograms(of: state, files: files)
        guard problems.isEmpty else { throw ManifestError(diagnostics: problems) }
        state.setExecutorDigests(state.executors.mapValues { $0.digest(files: files) })
        state.warnings += Self.skipped(all)
        return state
    }

    /// The last valid build, when `files` differ from its files only in a few Service documents that keep their
    /// names and references (see `DesiredStateBuilder.rebuilt`): those are parsed and their targets made again.
    /// nil when the change is of another kind — a file added or removed, another kind of document, a parse
    /// problem — and the caller builds in full.
    private func changedServices(_ files: [TreeFile], from source: some ManifestSource) throws
        -> DesiredStateBuilder.Built?
    {
        guard let last = lock.withLock({ lastBuilt }), last.root == source.root, last.files.count == files.count
        else { return nil }
        var changed: [TreeFile] = []
        var replaced: [TreeFile] = []
        for (old, new) in zip(last.files, files) {
            guard old.path == new.path, old.isExecutable == new.isExecutable else { return nil }
            if old.blob != new.blob {
                changed.append(new)
                replaced.append(old)
            }
            if changed.count > Self.incrementalLimit { return nil }
        }
        let before = lock.withLock { replaced.map { cache[CacheKey(path: $0.path, blob: $0.blob)] } }
        var services: [ServiceManifest] = []
        for (parsed, previous) in zip(try parseAll(changed, from: source), before) {
            guard let previous, parsed.diagnostics.isEmpty, parsed.broken.isEmpty,
                parsed.documents.map(Self.documentKey) == previous.documents.map(Self.documentKey)
            else { return nil }
            for document in parsed.documents {
                guard case .service(let service) = document else { return nil }
                services.append(service)
            }
        }
        guard let built = DesiredStateBuilder.rebuilt(last.built, replacing: services, revision: source.revision)
        else { return nil }
        lock.withLock {
            lastBuilt = LastBuilt(root: source.root, files: files, built: built)
            incrementalCount += 1
        }
        return built
    }

    private static func documentKey(_ document: ManifestDocument) -> String {
        "\(document.kind.rawValue)/\(document.name)"
    }

    /// At most this many changed files are taken in by `changedServices`; more are built in full.
    static let incrementalLimit = 256

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
