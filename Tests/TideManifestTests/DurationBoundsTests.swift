import Foundation
import Testing
import TideManifest

/// Durations are bounded where they are read: nothing infinite, NaN or absurdly long reaches a conversion to an
/// integer number of seconds or nanoseconds (where it would trap) or a sleep (where it would never end).
@Suite("TideManifest: durations are finite and at most ten years")
struct DurationBoundsTests {
    @Test("ManifestDuration refuses non-finite and overlong values, and formats anything without trapping")
    func parse() {
        for text in ["inf", "-inf", "nan", "infinity", "1e300", "1e400", "99999999999999999999d", "3651d", "-1s"] {
            #expect(ManifestDuration.seconds(text) == nil, "\(text) was taken")
        }
        #expect(ManifestDuration.isTooLong("1e300") && ManifestDuration.isTooLong("inf"))
        #expect(!ManifestDuration.isTooLong("soon") && !ManifestDuration.isTooLong("nan"))
        #expect(ManifestDuration.seconds("3650d") == 315_360_000.0)
        #expect(ManifestDuration.seconds("1h30m") == 5400)
        for value in [Double.infinity, -.infinity, .nan, 1e300, ManifestDuration.maximum * 1e6] {
            _ = ManifestDuration.format(value)  // must not trap
        }
    }

    @Test(
        "a manifest's overlong or non-finite duration is refused at file:line:column with the field path",
        arguments: [
            ("Executor", "{type: command, command: [x], timeout: inf}", "spec.timeout: 'inf'"),
            ("Executor", "{type: command, command: [x], timeout: .inf}", "spec.timeout: '.inf'"),
            ("Executor", "{type: command, command: [x], timeout: 1e300}", "spec.timeout: '1e300'"),
            ("Executor", "{type: command, command: [x], timeout: 99999999999999999999d}", "spec.timeout"),
            ("Environment", "{bake: 1e300}", "spec.bake: '1e300'"),
        ])
    func refused(_ kind: String, _ spec: String, _ message: String) {
        let text = "apiVersion: tide/v1\nkind: \(kind)\nmetadata: {name: x}\nspec: \(spec)\n"
        let (_, diagnostics) = ManifestDecoder.decode(file: "x.yaml", text: text)
        let match = diagnostics.first { $0.message.contains(message) }
        #expect(match != nil, "expected '\(message)' in \(diagnostics)")
        #expect(
            match.map {
                $0.message.contains("longer than the longest duration Tide takes (3650d)")
                    || $0.message.contains("is not a duration")
            } == true, "\(String(describing: match))")
        #expect(match?.location.file == "x.yaml" && match?.location.line == 4)
    }

    @Test("a canary pause of 1e300 seconds is refused where it is written")
    func pause() {
        let text = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: api}
            spec:
              executor: local
              version: "1"
              environments: {prod: {}}
              strategy: {type: canary, steps: [{setWeight: 10}, {pause: 1e300}]}

            """
        let (_, diagnostics) = ManifestDecoder.decode(file: "api.yaml", text: text)
        let match = diagnostics.first { $0.message.contains("longer than the longest duration") }
        #expect(match?.location.line == 8, "\(diagnostics)")
        #expect(match?.message.contains("pause") == true, "\(String(describing: match))")
    }

    @Test(
        "config values JSON cannot carry are refused at file:line:column: .inf, .nan, 1e400, nesting deeper than 64",
        arguments: [
            ("{a: .inf}", "spec.config.a: '.inf' is not a finite number"),
            ("{b: [1, -.Inf]}", "spec.config.b[1]: '-.Inf' is not a finite number"),
            ("{c: .nan}", "spec.config.c: '.nan' is not a finite number"),
            ("{d: 1e400}", "spec.config.d: '1e400' is not a finite number"),
            (String(repeating: "[", count: 70) + String(repeating: "]", count: 70), "nested more than 64 levels deep"),
            ("{e: 99999999999999999999}", "spec.config.e: '99999999999999999999' is an integer beyond"),
            ("{f: [-9223372036854775809]}", "spec.config.f[0]: '-9223372036854775809' is an integer beyond"),
        ])
    func config(_ config: String, _ message: String) {
        let text = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: api}
            spec:
              executor: local
              version: "1"
              environments: {prod: {}}
              config: \(config)

            """
        let (_, diagnostics) = ManifestDecoder.decode(file: "api.yaml", text: text)
        let match = diagnostics.first { $0.message.contains(message) }
        #expect(match != nil, "expected '\(message)' in \(diagnostics)")
        #expect(match?.location.file == "api.yaml" && match?.location.line == 8)
    }
}
