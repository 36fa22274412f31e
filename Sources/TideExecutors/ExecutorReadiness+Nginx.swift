import Foundation
import TideManifest

extension ExecutorReadiness {
    /// nginx: its binary, the include directory, nginx's own check of its configuration, and the routes of the
    /// target (listen, and a backend for the desired version and for the one running now).
    func nginx(_ executor: ExecutorManifest, for target: ReadinessTarget) async -> [ReadinessCheck] {
        let owner = "\(executor.name) (nginx)"
        var checks: [ReadinessCheck] = []

        var programs: [String: String] = [:]
        var missing: [String] = []
        var seen: Set<String> = []
        for argv in [executor.nginxTest, executor.nginxReload] {
            guard let program = argv.first, seen.insert(program).inserted else { continue }
            switch locate(program, environment: executor.environment, field: "spec.test and spec.reload") {
            case .success(let path): programs[program] = path
            case .failure(let problem): missing.append("\(problem)")
            }
        }
        checks.append(
            ReadinessCheck(
                name: "executor nginx binary", pass: missing.isEmpty,
                detail: missing.isEmpty
                    ? "\(owner): \(Set(programs.values).sorted().joined(separator: ", ")) is executable (test, reload)"
                    : "\(owner): \(missing.joined(separator: "; "))"))

        let directory = resolve(executor.path ?? "nginx")
        let include = "include \((directory as NSString).appendingPathComponent("*.conf"));"
        if let why = Self.notWritableDirectory(directory) {
            checks.append(
                ReadinessCheck(
                    name: "executor include directory", pass: false,
                    detail: "\(owner): configDir \(directory) \(why): create it, writable by the user tide runs as, "
                        + "and put `\(include)` inside http { } of nginx.conf"))
        } else {
            checks.append(
                ReadinessCheck(
                    name: "executor include directory", pass: true,
                    detail: "\(owner): configDir \(directory) exists and is writable"))
        }

        if let program = executor.nginxTest.first, programs[program] != nil {
            checks.append(await nginxTest(executor, for: target))
        } else {
            checks.append(
                ReadinessCheck(
                    name: "executor nginx -t", pass: false,
                    detail: "\(owner): not run, its program is missing (see executor nginx binary)"))
        }

        checks.append(routes(executor, for: target))
        return checks
    }

    /// Runs the executor's `test` command as a deployment would, before it reloads.
    private func nginxTest(_ executor: ExecutorManifest, for target: ReadinessTarget) async -> ReadinessCheck {
        let owner = "\(executor.name) (nginx)"
        let command = executor.nginxTest.joined(separator: " ")
        let runner = CommandExecutor(
            manifest: ExecutorManifest(
                name: executor.name, location: executor.location, command: executor.nginxTest,
                timeout: min(executor.timeout, 15), environment: executor.environment),
            workingDirectory: workingDirectory)
        let result = await runner.perform(
            ActionRequest(
                action: .health, service: target.id.service, environment: target.id.environment,
                version: target.version, previousVersion: target.stable, weight: 0, revision: "",
                actionID: "\(target.id.service).\(target.id.environment).readiness", config: target.config))
        guard result.succeeded else {
            let lines = result.standardError.split(separator: "\n").map(String.init)
            let why = lines.first { $0.contains("[emerg]") } ?? lines.last { !$0.isEmpty } ?? result.summary
            return ReadinessCheck(
                name: "executor nginx -t", pass: false,
                detail: "\(owner): `\(command)` fails: \(why); every deployment runs it first: fix nginx's "
                    + "configuration (or spec.test)")
        }
        return ReadinessCheck(
            name: "executor nginx -t", pass: true, detail: "\(owner): `\(command)` accepts nginx's configuration")
    }

    /// The target's `config.nginx`: a listen address, and a backend for every version the rollout routes to.
    private func routes(_ executor: ExecutorManifest, for target: ReadinessTarget) -> ReadinessCheck {
        let owner = "\(executor.name) (nginx)"
        let (routing, problems) = NginxRouting.read(target.config)
        guard let routing, problems.isEmpty else {
            return ReadinessCheck(
                name: "executor routes", pass: false,
                detail: "\(owner): \(problems.map(\.description).joined(separator: "; ")): fix the service's config")
        }
        var needed = [(target.version, "desired")]
        if let stable = target.stable, stable != target.version { needed.append((stable, "running now")) }
        var routes: [String] = []
        var missing: [String] = []
        for (version, role) in needed {
            do {
                routes.append("\(version) (\(role)) → \(try routing.address(of: version))")
            } catch {
                missing.append("\(error) (\(role))")
            }
        }
        guard missing.isEmpty else {
            return ReadinessCheck(
                name: "executor routes", pass: false,
                detail: "\(owner): \(missing.joined(separator: "; ")): add it to config.nginx.backends of "
                    + "\(target.id.service) (a progressive rollout routes to the version running now, and a "
                    + "rollback returns to it)")
        }
        return ReadinessCheck(
            name: "executor routes", pass: true,
            detail: "\(owner): listen \(routing.listen); \(routes.joined(separator: ", "))")
    }
}
