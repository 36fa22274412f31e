import Foundation
import Testing
import TideGit
import TideTestSupport

@testable import TideManifest

/// A regression corpus of bad input: each file in `Corpus/bad` is a whole desired state with one thing wrong (or one
/// hostile construct), and its header comment says what Tide must answer:
///
///     # class: durations
///     # expect: 9:12: spec.timeout: 'inf' is longer than the longest duration
///     # secret: hunter2           (urls-secrets: text no diagnostic may show)
///
/// Each file is loaded as `tide validate` loads a repository holding only that file, at `services/case.yaml`: the
/// expectations were recorded from `tide validate` on such repositories. `Corpus/good` holds valid states, so a
/// loader that refused everything could not pass.
@Suite("TideManifest: every input of the bad-input corpus is refused with the diagnostics it expects")
struct BadInputCorpusTests {
    /// Where each case sits in the repositories its expectations were recorded from.
    static let casePath = "services/case.yaml"

    /// Whole-state problems (no manifests at all) are reported at the manifest root rather than at a file.
    static let rootPath = "."

    /// The kinds of bad input the corpus covers; each must have a few cases.
    static let classes = [
        "syntax", "structure", "names", "references", "durations", "numbers", "conditions", "yaml-hostile",
        "urls-secrets", "strategies", "migrations", "policies", "executors",
    ]

    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

    static let badCases = caseNames(in: "bad")
    static let goodCases = caseNames(in: "good")

    /// The `.yaml` files in `Corpus/FOLDER`, in name order.
    static func caseNames(in folder: String) -> [String] {
        let directory = corpus.appendingPathComponent(folder).path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func bytes(_ folder: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: corpus.appendingPathComponent(folder).appendingPathComponent(name)))
    }

    /// What a case's header comment says.
    struct Header {
        /// `# expect: LINE:COLUMN: TEXT` — some diagnostic is at LINE:COLUMN and its message contains TEXT.
        struct Expectation: CustomStringConvertible {
            var line: Int
            var column: Int
            var text: String

            var description: String { "\(line):\(column): \(text)" }
        }

        var kind: String?
        var expectations: [Expectation] = []
        var secrets: [String] = []
    }

    struct MalformedHeader: Error, CustomStringConvertible {
        var line: String
        var description: String { "malformed header line '\(line)'" }
    }

    /// The comment lines at the top of a case (after a byte order mark, which the loader skips too).
    static func header(of bytes: [UInt8]) throws -> Header {
        let text = String(decoding: ManifestLoader.withoutByteOrderMark(bytes), as: UTF8.self)
        var header = Header()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("#") else { break }
            if line.hasPrefix("# class: ") {
                header.kind = String(line.dropFirst("# class: ".count))
            } else if line.hasPrefix("# secret: ") {
                header.secrets.append(String(line.dropFirst("# secret: ".count)))
            } else if line.hasPrefix("# expect: ") {
                let parts = line.dropFirst("# expect: ".count).split(
                    separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3, let number = Int(parts[0]), let column = Int(parts[1]),
                    parts[2].hasPrefix(" "), parts[2].count > 1
                else { throw MalformedHeader(line: String(line)) }
                header.expectations.append(
                    Header.Expectation(line: number, column: column, text: String(parts[2].dropFirst())))
            }
        }
        return header
    }

    /// One manifest file held in memory: what `GitCommitSource` gives for a commit whose tree holds only it.
    struct SingleFileSource: ManifestSource {
        let path: String
        let bytes: [UInt8]

        var revision: ObjectID? { nil }
        var root: String { "" }

        func files() throws -> [TreeFile] {
            [TreeFile(path: path, blob: ObjectID.blobHash(of: bytes), isExecutable: false)]
        }

        func contents(of blob: ObjectID) throws -> [UInt8] { bytes }
    }

    struct Loaded {
        var state: DesiredState?
        var diagnostics: [Diagnostic]
        var elapsed: Duration
    }

    /// Loads `bytes` as the whole desired state with a fresh loader (no cache), timing it.
    static func load(_ bytes: [UInt8]) throws -> Loaded {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let state = try ManifestLoader().load(from: SingleFileSource(path: casePath, bytes: bytes))
            return Loaded(state: state, diagnostics: [], elapsed: clock.now - start)
        } catch let error as ManifestError {
            return Loaded(state: nil, diagnostics: error.diagnostics, elapsed: clock.now - start)
        }
    }

    /// An error at the expected place (in the case's file, or at the root for whole-state problems) whose message
    /// contains the expected text.
    static func matches(_ diagnostic: Diagnostic, _ expectation: Header.Expectation) -> Bool {
        guard diagnostic.severity == .error, [casePath, rootPath].contains(diagnostic.location.file) else {
            return false
        }
        return diagnostic.location.line == expectation.line && diagnostic.location.column == expectation.column
            && diagnostic.message.contains(expectation.text)
    }

    @Test("a bad case is refused, in under 5 s, with every diagnostic its header expects", arguments: badCases)
    func bad(_ name: String) async throws {
        let bytes = try Self.bytes("bad", name)
        let header = try Self.header(of: bytes)
        let kind = header.kind ?? ""
        #expect(Self.classes.contains(kind), "\(name): class '\(kind)' is not one of \(Self.classes)")
        #expect(!header.expectations.isEmpty, "\(name) expects no diagnostic")

        // Decoded off Swift's cooperative threads: hundreds of cases at once must not hold every one of them.
        let loaded = try await detached { try Self.load(bytes) }
        let accepted = loaded.state != nil
        #expect(!accepted, "\(name) was accepted")
        #expect(loaded.elapsed < .seconds(5), "\(name) took \(loaded.elapsed)")
        let listed = loaded.diagnostics.map(\.description).joined(separator: "\n")
        for expectation in header.expectations {
            let found = loaded.diagnostics.contains { Self.matches($0, expectation) }
            #expect(found, "\(name): no diagnostic at \(expectation); got:\n\(listed)")
        }
        for secret in header.secrets {
            let leaks = loaded.diagnostics.filter { $0.description.contains(secret) || $0.message.contains(secret) }
            #expect(leaks.isEmpty, "\(name): the password '\(secret)' is shown in \(leaks)")
        }
    }

    @Test("a good case loads without errors", arguments: goodCases)
    func good(_ name: String) async throws {
        let bytes = try Self.bytes("good", name)
        let loaded = try await detached { try Self.load(bytes) }
        #expect(loaded.diagnostics.isEmpty, "\(loaded.diagnostics.map(\.description))")
        let state = try #require(loaded.state, "\(name) was refused")
        #expect(!state.targets.isEmpty)
        #expect(loaded.elapsed < .seconds(5), "\(name) took \(loaded.elapsed)")
    }

    @Test("the corpus has at least 200 bad cases, at least 5 of every class, and good controls")
    func coverage() throws {
        #expect(Self.badCases.count >= 200, "only \(Self.badCases.count) bad cases in \(Self.corpus.path)")
        #expect(Self.goodCases.count >= 3, "only \(Self.goodCases.count) good cases")
        var counts: [String: Int] = [:]
        for name in Self.badCases {
            let numbered = name.prefix(3).allSatisfy(\.isNumber) && name.dropFirst(3).hasPrefix("-")
            #expect(numbered, "\(name) is not named NNN-name.yaml")
            let kind = try Self.header(of: Self.bytes("bad", name)).kind ?? "(none)"
            counts[kind, default: 0] += 1
        }
        for kind in Self.classes {
            #expect(counts[kind, default: 0] >= 5, "class \(kind) has \(counts[kind, default: 0]) cases")
        }
        let unknown = Set(counts.keys).subtracting(Self.classes)
        #expect(unknown.isEmpty, "cases of unknown classes: \(unknown.sorted())")
    }
}
