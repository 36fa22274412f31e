import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

/// What the built-in executors would refuse at deploy time is refused when the revision is read, at its place.
@Suite("TideManifest: what the built-in executors would refuse, found by validation")
struct ExecutorValidationTests {
    static let platform = """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: edge}
        spec: {type: nginx, configDir: /etc/nginx/tide}
        ---
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: flags}
        spec: {type: flags, path: flags.json}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: staging}
        spec: {}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}
        ---
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: smoke}
        spec: {metrics: [{name: up, provider: {http: {url: "http://127.0.0.1:1/"}}, successCondition: "true"}]}

        """

    static let staging = "{config: {nginx: {listen: 8081}}}"
    static let prod = #"{version: "1.0.0", config: {nginx: {listen: 8080}}}"#

    /// A service on nginx. Lines: 3 metadata, 5 executor, 6 version, 7 strategy, 9… environments, then config
    /// (with the default: 11 config, 12 nginx, 13 backends, 14 "1.0.0", 15 "2.0.0").
    static func shop(
        name: String = "shop", executor: String = "edge", version: String = "2.0.0",
        strategy: String = "{type: canary, steps: [{setWeight: 10}]}",
        environments: [(String, String)] = [("staging", staging), ("prod", prod)],
        config: String = """
            nginx:
              backends:
                "1.0.0": "127.0.0.1:9001"
                "2.0.0": "127.0.0.1:9002"
        """
    ) -> String {
        """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: \(name)}
        spec:
          executor: \(executor)
          version: "\(version)"
          strategy: \(strategy)
          environments:
        \(environments.map { "    \($0.0): \($0.1)\n" }.joined())  config:
        \(config)

        """
    }

    func validate(_ files: [String: String]) throws -> [String] {
        let fixture = try GitFixture()
        let id = try fixture.commit("state", files: files.merging(["platform.yaml": Self.platform]) { $1 })
        let source = GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: "")
        do {
            _ = try ManifestLoader().load(from: source)
            return []
        } catch let error as ManifestError {
            return error.diagnostics.map(\.description)
        }
    }

    @Test("a valid nginx service: merged backends, per-environment listens, IPv6, wildcard and unix addresses")
    func valid() throws {
        let diagnostics = try validate([
            "shop.yaml": Self.shop(
                version: "3.0.0",
                environments: [
                    (
                        "staging",
                        #"{config: {nginx: {listen: "[::1]:8081", backends: {"3.0.0": "app-3.internal:9003"}}}}"#
                    ),
                    ("prod", #"{version: "1.0.0", config: {nginx: {listen: "*:8080"}}}"#),
                ]),
            "cart.yaml": Self.shop(
                name: "cart",
                environments: [
                    ("staging", #"{config: {nginx: {listen: "unix:/run/cart.sock"}}}"#),
                    ("prod", #"{version: "1.0.0", config: {nginx: {listen: "10.0.0.5:8080"}}}"#),
                ]),
            "flagged.yaml": Self.shop(name: "flagged", executor: "flags", config: "    {}"),
        ])
        #expect(diagnostics == [])
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        var name: String
        var files: [String: String]
        var expected: [String]
        var testDescription: String { name }
    }

    static let refusal = "; nginx executor 'edge' would refuse the deployment"

    static let badCases: [BadCase] = [
        BadCase(
            name: "listen: a port out of range",
            files: [
                "shop.yaml": shop(environments: [("prod", #"{version: "1.0.0", config: {nginx: {listen: 70000}}}"#)])
            ],
            expected: [
                "shop.yaml:9:55: Service 'shop': spec.environments.prod.config.nginx.listen: 70000 is not a port "
                    + "(1–65535)" + refusal
            ]),
        BadCase(
            name: "listen: a bad host",
            files: ["shop.yaml": shop(environments: [("staging", #"{config: {nginx: {listen: "bad_host:8080"}}}"#)])],
            expected: [
                "shop.yaml:9:40: Service 'shop': spec.environments.staging.config.nginx.listen: 'bad_host:8080' is "
                    + "not a port or host:port (host a name, an IPv4 address, [IPv6] or *; port 1–65535) or "
                    + "unix:/path" + refusal
            ]),
        BadCase(
            name: "listen: missing",
            files: ["shop.yaml": shop(environments: [("staging", "{}")])],
            expected: [
                "shop.yaml:12:7: Service 'shop': spec.config.nginx.listen: missing: give the port (or host:port) "
                    + "nginx listens on" + refusal
            ]),
        BadCase(
            name: "the desired version has no backend (spec.version)",
            files: ["shop.yaml": shop(version: "3.0.0")],
            expected: [
                "shop.yaml:6:12: Service 'shop': spec.version: 3.0.0 (desired in staging) has no backend in "
                    + "spec.config.nginx.backends (shop.yaml:14:9): add \"3.0.0\": host:port there" + refusal
            ]),
        BadCase(
            name: "an environment's version has no backend",
            files: [
                "shop.yaml": shop(environments: [
                    ("staging", staging), ("prod", #"{version: "1.1.0", config: {nginx: {listen: 8080}}}"#),
                ])
            ],
            expected: [
                "shop.yaml:10:21: Service 'shop': spec.environments.prod.version: 1.1.0 (desired in prod) has no "
                    + "backend in spec.config.nginx.backends (shop.yaml:14:9): add \"1.1.0\": host:port there"
                    + refusal
            ]),
        BadCase(
            name: "one version without a backend in several environments is one problem",
            files: [
                "shop.yaml": shop(
                    version: "9.9.9",
                    environments: [("staging", staging), ("prod", "{config: {nginx: {listen: 8080}}}")])
            ],
            expected: [
                "shop.yaml:6:12: Service 'shop': spec.version: 9.9.9 (desired in staging, prod) has no backend in "
                    + "spec.config.nginx.backends (shop.yaml:14:9): add \"9.9.9\": host:port there" + refusal
            ]),
        BadCase(
            name: "a backend that is not an address",
            files: [
                "shop.yaml": shop(
                    config: """
                            nginx:
                              backends:
                                "1.0.0": "127.0.0.1:9001"
                                "2.0.0": "127.0.0.1:99999"
                        """)
            ],
            expected: [
                "shop.yaml:15:18: Service 'shop': spec.config.nginx.backends.2.0.0: expected host:port (port "
                    + "1–65535) or unix:/path" + refusal
            ]),
        BadCase(
            name: "no nginx section in the config",
            files: [
                "shop.yaml": shop(
                    environments: [("staging", "{}"), ("prod", #"{version: "1.0.0"}"#)], config: "    replicas: 2")
            ],
            expected: [
                "shop.yaml:12:5: Service 'shop': spec.config.nginx: missing: give listen (where nginx listens) and "
                    + "backends (where each version runs)" + refusal
            ]),
        BadCase(
            name: "two environments on one listen address",
            files: [
                "shop.yaml": shop(environments: [("staging", "{config: {nginx: {listen: 8080}}}"), ("prod", prod)])
            ],
            expected: [
                "shop.yaml:10:55: Service 'shop': spec.environments.prod.config.nginx.listen: shop@prod would listen "
                    + "on 127.0.0.1:8080, where shop@staging listens (shop.yaml:9:40) in nginx executor 'edge' "
                    + "(/etc/nginx/tide); nginx would send both targets' requests to one of them: give each its own "
                    + "listen"
            ]),
        BadCase(
            name: "two targets that would write one nginx file",
            files: [
                "envs.yaml": "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: eu-prod}\nspec: {}\n",
                "shop.yaml": shop(environments: [("eu-prod", staging)]),
                "shop-eu.yaml": shop(name: "shop-eu", environments: [("prod", prod)]),
            ],
            expected: [
                "shop.yaml:3:18: Service 'shop': shop@eu-prod and shop-eu@prod (shop-eu.yaml:3:18) both need nginx "
                    + "file tide-shop-eu-prod.conf in nginx executor 'edge' (/etc/nginx/tide), and each would "
                    + "overwrite the other's: rename a service or an environment"
            ]),
        BadCase(
            name: "a shadow rollout on a flags executor",
            files: [
                "shop.yaml": shop(executor: "flags", strategy: "{type: shadow, analysis: smoke}", config: "    {}")
            ],
            expected: [
                "shop.yaml:7:20: Service 'shop': spec.strategy.type: a shadow rollout mirrors traffic, which flags "
                    + "executor 'flags' cannot do (applications split by user themselves); use a traffic executor "
                    + "(nginx) or another strategy"
            ]),
        BadCase(
            name: "{{batch}} outside a batched backfill",
            files: [
                "db.yaml": """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: db}
                spec: {type: sql, url: "sqlite:db.sqlite"}
                ---
                apiVersion: tide/v1
                kind: Migration
                metadata: {name: m}
                spec:
                  executor: db
                  expand: {up: ["UPDATE t SET a = 1 LIMIT {{batch}}"]}
                  backfill: {up: ["UPDATE t SET b = 2", "UPDATE t SET a = 1 LIMIT {{batch}}"]}

                """
            ],
            expected: [
                "db.yaml:11:17: Migration 'm': spec.expand.up[0]: {{batch}} is replaced only in a backfill with "
                    + "batchSize (spec.backfill.batchSize); the database would be sent it as written",
                "db.yaml:12:41: Migration 'm': spec.backfill.up[1]: {{batch}} is replaced only in a backfill with "
                    + "batchSize (spec.backfill.batchSize); the database would be sent it as written",
            ]),
    ]

    @Test("each problem at file:line:column, naming the field and the executor", arguments: badCases)
    func bad(_ bad: BadCase) throws {
        let found = try validate(bad.files)
        #expect(found == bad.expected)
    }

    @Test(
        "addresses as the nginx executor takes them",
        arguments: [
            ("127.0.0.1:8080", true), ("app-1.internal:9000", true), ("[::1]:8080", true), ("unix:/run/a.sock", true),
            ("127.0.0.1:0", false), ("127.0.0.1:65536", false), ("bad_host:80", false), ("-app:80", false),
            ("256.1.1.1:80", false), ("1.2.3:80", false), (":8080", false), ("app:80;", false), ("app", false),
            ("app:+80", false), ("[zz]:80", false), ("unix:/run/a sock", false),
        ])
    func addresses(text: String, valid: Bool) {
        #expect(NginxRouting.isAddress(text, wildcard: false) == valid)
        #expect(NginxRouting.isAddress("*:8080", wildcard: true))
        #expect(!NginxRouting.isAddress("*:8080", wildcard: false))
    }
}
