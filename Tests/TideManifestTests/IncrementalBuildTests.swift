import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

/// A loader that lives across revisions builds a new one from the last valid one when only a few services
/// changed (`DesiredStateBuilder.rebuilt`). Over random commit sequences — versions and configs changed (the fast
/// path), and everything that must send it to a full build: references changed, made undefined or cyclic, files
/// broken, fixed, added, removed, services renamed onto each other, nginx listen addresses made to collide, the
/// platform edited — its answer is always the one a fresh loader gives, diagnostics included.
@Suite("TideManifest: incremental desired state equals a full build")
struct IncrementalBuildTests {
    /// A seeded generator (SplitMix64): a failing sequence is replayed from its seed.
    struct Generator {
        var state: UInt64

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    struct Service {
        var name: String
        var executor = "local"
        var version = "1.0.0"
        var environments: [String: String?] = ["dev": nil, "staging": nil, "prod": nil]
        var dependsOn: [String] = []
        var replicas = 1
        var listen = 8000
        var analysis: String?
        var broken = false
        var comments = 0

        var yaml: String {
            var text = String(repeating: "# moved down\n", count: comments)
            text += """
                apiVersion: tide/v1
                kind: Service
                metadata: {name: \(name)}
                spec:
                  executor: \(executor)
                  version: "\(version)"
                  dependsOn: [\(dependsOn.joined(separator: ", "))]

                """
            if let analysis {
                text += "  strategy: {type: canary, steps: [{setWeight: 50}, {analysis: \(analysis)}]}\n"
            }
            text += "  environments:\n"
            for (offset, environment) in environments.keys.sorted().enumerated() {
                var fields = environments[environment]!.map { ["version: \"\($0)\""] } ?? []
                // (Each environment listens on its own port, unless `listen` was made to collide.)
                if executor == "edge" { fields.append("config: {nginx: {listen: \(listen + 1000 * offset)}}") }
                text += "    \(environment): {\(fields.joined(separator: ", "))}\n"
            }
            text += "  config:\n    replicas: \(replicas)\n"
            if executor == "edge" {
                text += "    nginx:\n      listen: \(listen)\n      backends:\n"
                for version in Set([version] + environments.values.compactMap { $0 }).sorted() {
                    text += "        \"\(version)\": \"127.0.0.1:\(9000 + replicas)\"\n"
                }
            }
            if broken { text += "  oops: [unclosed\n" }
            return text
        }
    }

    static func platform(timeout: Int) -> String {
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: local}
        spec: {type: command, command: ["/bin/true"], timeout: \(timeout)s}
        ---
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: other}
        spec: {type: command, command: ["/bin/true"]}
        ---
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: edge}
        spec: {type: nginx, configDir: /etc/nginx/tide}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: dev}
        spec: {}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: staging}
        spec: {requires: [dev]}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true, requires: [staging]}
        ---
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: smoke}
        spec: {metrics: [{name: up, provider: {http: {url: "http://127.0.0.1:1/"}}, successCondition: "true"}]}

        """
    }

    /// Undoes what makes a revision invalid (most of the time: a few problems, a cycle say, may stay).
    static func repair(_ services: inout [String: Service]) {
        for key in services.keys.sorted() {
            var service = services[key]!
            service.name = key
            service.broken = false
            if service.executor == "missing" || service.executor == "other" { service.executor = "local" }
            service.listen = 8000 + 3 * (Int(key.dropFirst()) ?? 0)
            if service.analysis == "ghost" { service.analysis = "smoke" }
            service.dependsOn.removeAll { services[$0] == nil || $0 >= key }
            service.environments["qa"] = nil
            services[key] = service
        }
    }

    /// One random change to the repository's services (or its platform).
    static func mutate(_ services: inout [String: Service], timeout: inout Int, _ random: inout Generator) {
        let names = services.keys.sorted()
        guard let name = names.isEmpty ? nil : random.pick(names) else {
            services["s\(random.below(1000))"] = Service(name: "s\(random.below(1000))")
            return
        }
        var service = services[name]!
        switch random.below(100) {
        case 0..<35: service.version = "1.\(random.below(50)).\(random.below(50))"
        case 35..<50: service.replicas = 1 + random.below(9)
        case 50..<56: service.environments[random.pick(["dev", "staging", "prod"])] = .some("2.\(random.below(9)).0")
        case 56..<60: service.comments = random.below(3)
        case 60..<64: service.dependsOn = random.chance(70) ? [random.pick(names + ["ghost"])] : []
        case 64..<67: service.executor = random.pick(["local", "other", "edge", "missing"])
        case 67..<70:
            service.listen = random.pick(services.values.filter { $0.executor == "edge" }.map(\.listen) + [8000])
        case 70..<73:
            let environment = random.pick(["dev", "staging", "prod", "qa"])
            if service.environments[environment] != nil {
                service.environments[environment] = nil
            } else {
                service.environments[environment] = .some(nil)
            }
        case 73..<77: service.broken.toggle()
        case 77..<80: service.analysis = random.pick([nil, "smoke", "ghost"])
        case 80..<85:
            let added = "s\(random.below(1000))"
            services[added] = Service(name: added, dependsOn: random.chance(30) ? [name] : [])
        case 85..<89:
            services[name] = nil
            return
        case 89..<93: service.name = random.pick(names + ["s\(random.below(1000))"])  // maybe a duplicate
        default: timeout = 1 + random.below(5)
        }
        services[name] = service
    }

    /// The loader's answer for `head`: the desired state in short, or the diagnostics.
    static func answer(_ loader: ManifestLoader, _ repository: Repository, _ head: ObjectID) -> String {
        do {
            let state = try loader.load(from: GitCommitSource(repository: repository, commit: head, root: ""))
            let targets = state.targets.map {
                "\($0.id) \($0.executor) \($0.version) \($0.configDigest) \($0.baseConfigDigest) \($0.executorDigest) "
                    + "\($0.dependsOn) \($0.migrations) \($0.location)"
            }
            let services = state.services.keys.sorted().map { "\($0): \(state.services[$0]!.hashValue)" }
            return (["valid \(state.revision?.hex ?? "-")"] + targets + services + state.warnings.map(\.description))
                .joined(separator: "\n")
        } catch let error as ManifestError {
            return "invalid\n" + error.diagnostics.map(\.description).joined(separator: "\n")
        } catch {
            return "error \(error)"
        }
    }

    @Test("12 seeds × 25 commits: the incremental answer is the full build's, and the fast path is taken")
    func randomCommitSequences() throws {
        var fastBuilds = 0
        var commits = 0
        var invalid = 0
        for seed in UInt64(1)...12 {
            var random = Generator(state: seed)
            let fixture = try GitFixture()
            var services: [String: Service] = [:]
            for index in 0..<8 {
                var service = Service(name: "s\(index)", listen: 8000 + 3 * index)
                if index > 0, random.chance(50) { service.dependsOn = ["s\(random.below(index))"] }
                if index % 3 == 2 { service.executor = "edge" }
                services[service.name] = service
            }
            var timeout = 2
            let repository = try Repository.open(at: fixture.repoPath)
            let loader = ManifestLoader()
            var written: Set<String> = []
            var lastInvalid = false
            for step in 0..<25 {
                if step > 0, lastInvalid, random.chance(60) {
                    Self.repair(&services)
                } else if step > 0 {
                    for _ in 0..<(1 + random.below(3)) { Self.mutate(&services, timeout: &timeout, &random) }
                }
                let paths = Set(services.keys.map { "services/\($0).yaml" })
                for gone in written.subtracting(paths) { try fixture.remove(gone) }
                var files = ["platform.yaml": Self.platform(timeout: timeout)]
                for (key, service) in services { files["services/\(key).yaml"] = service.yaml }
                written = paths
                for (path, contents) in files { try fixture.write(path, contents) }
                try fixture.git("add", "-A")
                try fixture.git("commit", "-q", "--no-verify", "--allow-empty", "-m", "step \(step)")
                let head = try fixture.head()
                let before = loader.incrementalBuilds
                let incremental = Self.answer(loader, repository, head)
                let full = Self.answer(ManifestLoader(), repository, head)
                #expect(incremental == full, "seed \(seed), step \(step): the incremental build differs")
                if incremental != full { return }
                fastBuilds += loader.incrementalBuilds - before
                commits += 1
                lastInvalid = full.hasPrefix("invalid")
                if lastInvalid { invalid += 1 }
            }
        }
        #expect(commits == 300)
        // Both paths are exercised: most commits change a version or a config, many break something.
        #expect(fastBuilds >= 60, "the fast path was taken \(fastBuilds) times")
        #expect(invalid >= 30, "only \(invalid) invalid revisions: the full path's diagnostics were barely compared")
    }

    @Test("a version bump is built from the last revision: one file parsed, the other services not checked again")
    func versionBumpIsIncremental() throws {
        let fixture = try GitFixture()
        var files = ["platform.yaml": Self.platform(timeout: 2)]
        for index in 0..<50 { files["services/s\(index).yaml"] = Service(name: "s\(index)").yaml }
        let first = try fixture.commit("fifty services", files: files)
        let repository = try Repository.open(at: fixture.repoPath)
        let loader = ManifestLoader()
        let before = try loader.load(from: GitCommitSource(repository: repository, commit: first, root: ""))
        var bumped = Service(name: "s7")
        bumped.version = "1.0.1"
        let second = try fixture.commit("bump s7", files: ["services/s7.yaml": bumped.yaml])
        let parsed = loader.filesParsed
        let after = try loader.load(from: GitCommitSource(repository: repository, commit: second, root: ""))
        #expect(loader.filesParsed == parsed + 1)
        #expect(loader.incrementalBuilds == 1)
        #expect(after.revision == second)
        #expect(after.target(TargetID(service: "s7", environment: "prod"))?.version == "1.0.1")
        #expect(before.target(TargetID(service: "s7", environment: "prod"))?.version == "1.0.0")
        #expect(after.targets.map(\.id) == before.targets.map(\.id))
        #expect(Self.answer(loader, repository, second) == Self.answer(ManifestLoader(), repository, second))
    }
}
