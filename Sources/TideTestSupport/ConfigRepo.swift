import Foundation

/// A config repo whose executor is a script that logs every call and fails or hangs on request.
public struct ConfigRepo: Sendable {
    public let fixture: GitFixture
    public let scratch: TemporaryDirectory
    public let log: String
    public let state: String

    public init(bare: Bool = false, root: String = "") throws {
        fixture = try GitFixture(bare: bare)
        scratch = try TemporaryDirectory("tide-e2e")
        log = scratch.appending("executor.log")
        state = scratch.appending("state.sqlite")
        let script = scratch.appending("executor.sh")
        try Data(
            """
            #!/bin/sh
            echo "$TIDE_ACTION $TIDE_SERVICE@$TIDE_ENVIRONMENT $TIDE_VERSION $TIDE_ACTION_ID" >> "$LOG"
            env > "$LOG.env"
            case "$TIDE_VERSION" in
              bad) echo "cannot pull image $TIDE_VERSION" >&2; exit 4 ;;
              busy) echo "the registry is busy, try again later" >&2; exit 75 ;;
              slow) sleep 30 ;;
              hold) while [ ! -f "$LOG.release" ]; do sleep 0.05; done ;;
            esac
            if [ "$TIDE_ACTION" = set-weight ] && [ -f "$LOG.hold-weights" ]; then
              while [ ! -f "$LOG.release" ]; do sleep 0.05; done
            fi
            case "$TIDE_VERSION" in
              never) exit 9 ;;
            esac
            exit 0

            """.utf8
        ).write(to: URL(fileURLWithPath: script))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let prefix = root.isEmpty ? "" : root + "/"
        try fixture.write(
            prefix + "base.yaml",
            """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: script}
            spec:
              type: command
              command: ["\(script)"]
              timeout: 2s
              env: {LOG: "\(log)"}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {production: true}

            """)
        try fixture.write(prefix + "api.yaml", Self.service("api", "1.0.0"))
        try fixture.write(prefix + "web.yaml", Self.service("web", "1.0.0", dependsOn: "[api]"))
        try fixture.commit("initial")
    }

    public static func service(_ name: String, _ version: String, dependsOn: String = "[]") -> String {
        """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: \(name)}
        spec:
          executor: script
          version: "\(version)"
          environments: {prod: {}}
          dependsOn: \(dependsOn)

        """
    }

    @discardableResult
    public func tide(_ arguments: String..., extra: [String] = []) async throws -> ProcessOutput {
        try await TideBinary.runDetached(
            arguments + ["--repo", fixture.repoPath, "--state", state] + extra, in: scratch.path)
    }

    public func calls() -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map {
            $0.split(separator: " ").prefix(3).joined(separator: " ")
        }
    }

    public func json(_ output: ProcessOutput) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))
    }
}
