import Foundation

/// Synthetic config repositories, written with `git fast-import` (one pack, like a fetched repository).
enum SyntheticRepo {
    static let environments = ["dev", "staging", "prod"]

    /// One command executor and one production environment: the platform of the canary and slow-executor
    /// repositories.
    static let singleProdPlatform = (
        "platform.yaml",
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: local}
        spec: {type: command, command: [/bin/true]}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}

        """
    )

    static func serviceName(_ n: Int) -> String { "svc-\(String(format: "%05d", n))" }
    static func servicePath(_ n: Int) -> String { "services/team-\(n % 50)/\(serviceName(n)).yaml" }

    /// Executors, and dev → staging → prod.
    static func platformFiles(canaryPauses: Bool = true) -> [(String, String)] {
        [
            (
                "platform/executors.yaml",
                """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: local}
                spec:
                  type: command
                  command: ["/usr/local/bin/deploy"]
                  timeout: 5m
                  env: {REGION: eu-west-1}

                """
            ),
            (
                "platform/environments.yaml",
                """
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: dev}
                spec: {production: false}
                ---
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: staging}
                spec:
                  production: false
                  requires: [dev]
                ---
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: prod}
                spec:
                  production: true
                  requires: [staging]

                """
            ),
        ]
    }

    /// A realistic service: config with nested maps, per-environment overrides, a canary strategy, automatic
    /// rollback, and (for most) a dependency on a neighbour in the same team.
    static func service(
        _ n: Int, version: String = "1.4.2", devVersion: String? = nil, environments: [String] = environments
    ) -> String {
        let name = serviceName(n)
        let dependsOn = n % 5 != 0 && n >= 50 ? "  dependsOn: [\(serviceName(n - 50))]\n" : ""
        var overrides = ""
        for environment in environments {
            switch environment {
            case "prod":
                overrides += """
                        prod:
                          config:
                            replicas: 6
                            resources: {cpu: "1", memory: 512Mi}

                    """
            case "staging":
                overrides += "    staging:\n      config: {logLevel: debug}\n"
            default:
                overrides += "    \(environment): {\(devVersion.map { "version: \"\($0)\"" } ?? "")}\n"
            }
        }
        return """
            apiVersion: tide/v1
            kind: Service
            metadata:
              name: \(name)
            spec:
              executor: local
              version: "\(version)"
            \(dependsOn)  config:
                image: registry.example.com/team-\(n % 50)/\(name)
                replicas: 3
                port: \(8000 + n % 1000)
                logLevel: info
                resources: {cpu: 500m, memory: 256Mi}
                featureFlags:
                  newCheckout: \(n % 2 == 0)
                  searchV2: false
              environments:
            \(overrides)  strategy:
                type: canary
                steps:
                  - setWeight: 10
                  - pause: 5m
                  - setWeight: 50
                  - pause: 10m
              rollback: {automatic: true, writeBack: none}

            """
    }

    /// Writes a repository at `path` with the given commits (each a list of path → content), on `main`.
    static func write(at path: String, commits: [(message: String, files: [(String, String)])]) throws {
        try run("/usr/bin/git", ["init", "-q", "-b", "main", path])
        var stream = ""
        stream.reserveCapacity(1 << 24)
        var time = 1_700_000_000
        for (index, commit) in commits.enumerated() {
            time += 60
            stream += "commit refs/heads/main\nmark :\(index + 1)\n"
            stream += "committer Bench <bench@example.com> \(time) +0000\n"
            stream += "data \(commit.message.utf8.count)\n\(commit.message)\n"
            if index > 0 { stream += "from :\(index)\n" }
            for (file, content) in commit.files {
                stream += "M 100644 inline \(file)\ndata \(content.utf8.count)\n\(content)\n"
            }
            stream += "\n"
        }
        try run("/usr/bin/git", ["-C", path, "fast-import", "--quiet"], input: Data(stream.utf8))
        try run("/usr/bin/git", ["-C", path, "checkout", "-q", "main"])
    }

    /// The config repo of the cold-plan scenario: `services` services × 3 environments in one commit.
    static func large(at path: String, services: Int) throws {
        var files = platformFiles()
        for n in 0..<services { files.append((servicePath(n), service(n))) }
        try write(at: path, commits: [("Add \(services) services", files)])
    }

    /// `commits` commits after the first; commit k changes service k % `services`.
    static func history(at path: String, services: Int, commits: Int) throws {
        var all: [(message: String, files: [(String, String)])] = []
        var first = platformFiles()
        for n in 0..<services { first.append((servicePath(n), service(n))) }
        all.append(("Add \(services) services", first))
        for k in 1...commits {
            let n = k % services
            all.append(("Bump \(serviceName(n)) (\(k))", [(servicePath(n), service(n, version: "1.\(k).0"))]))
        }
        try write(at: path, commits: all)
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String], input: Data? = nil, in directory: String? = nil) throws
        -> String
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        let inputPipe = Pipe()
        if input != nil { process.standardInput = inputPipe }
        try process.run()
        if let input {
            // Write from another thread: the child may fill its stdout before it has read all of stdin.
            let writer = Thread {
                inputPipe.fileHandleForWriting.write(input)
                try? inputPipe.fileHandleForWriting.close()
            }
            writer.start()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
