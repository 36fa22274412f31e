public import Foundation
public import TideManifest

/// Which side of a split a user gets, by a stable hash that any application can compute:
///
///     bucket = FNV-1a-32(UTF-8 bytes of "SERVICE/ENVIRONMENT/KEY") mod 100
///     the user gets the candidate when bucket < weight
///
/// FNV-1a-32: start with 2166136261; for each byte, xor it in, then multiply by 16777619 (mod 2^32). The same
/// user keeps their side as the weight grows (10 → 25 → 50: everyone who had the candidate keeps it).
public enum TrafficSplit {
    public static func bucket(service: String, environment: String, key: String) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in "\(service)/\(environment)/\(key)".utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return Int(hash % 100)
    }
}

/// The file the flags executor publishes: for each target, the stable version, the candidate (if a rollout is
/// under way), the candidate's weight and, for A/B, the match.
public struct FlagsFile: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var service: String
        public var environment: String
        public var stable: String
        public var candidate: String?
        /// Share of users (by `TrafficSplit.bucket`) that get the candidate.
        public var weight: Int
        public var match: JSONValue?
        public var revision: String
        public var updatedAt: Date
    }

    public var format = "tide-flags/v1"
    public var hash = "fnv1a32(SERVICE/ENVIRONMENT/KEY) % 100 < weight -> candidate"
    /// Keyed by `SERVICE@ENVIRONMENT`.
    public var targets: [String: Entry] = [:]

    public init() {}

    public static func read(_ path: String) throws -> FlagsFile {
        guard FileManager.default.fileExists(atPath: path) else { return FlagsFile() }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(FlagsFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Which version `key` gets for a target, and why.
    public func side(service: String, environment: String, key: String) -> (version: String, reason: String)? {
        guard let entry = targets["\(service)@\(environment)"] else { return nil }
        let bucket = TrafficSplit.bucket(service: service, environment: environment, key: key)
        guard let candidate = entry.candidate else {
            return (entry.stable, "no rollout under way; everyone gets stable \(entry.stable)")
        }
        if bucket < entry.weight {
            return (candidate, "bucket \(bucket) < weight \(entry.weight): candidate \(candidate)")
        }
        return (entry.stable, "bucket \(bucket) ≥ weight \(entry.weight): stable \(entry.stable)")
    }
}

/// `type: flags`: publishes weights to a JSON file (written whole to a temporary file and renamed over the old
/// one, under a lock, so readers never see half a file) instead of moving traffic itself.
public struct FlagsExecutor: Executor {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public static func resolve(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
    }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        let start = Date()
        do {
            let message = try update(request)
            return ActionResult(
                outcome: .succeeded, standardOutput: message, duration: Date().timeIntervalSince(start))
        } catch let error as FlagsError where !error.transient {
            return ActionResult(
                outcome: .exited(1), standardError: "\(error)", duration: Date().timeIntervalSince(start))
        } catch {
            // The file system said no (a full disk, a lock, a permission): not a verdict on the candidate.
            return ActionResult(
                outcome: .unavailable("\(error)"), standardError: "\(error)", duration: Date().timeIntervalSince(start))
        }
    }

    struct FlagsError: Error, CustomStringConvertible {
        var description: String
        /// The file could not be read, locked or written (rather than the request being one it cannot serve).
        var transient = false
    }

    private func update(_ request: ActionRequest) throws -> String {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else {
            throw FlagsError(
                description: "cannot open \(path).lock: \(String(cString: strerror(errno)))", transient: true)
        }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else {
            throw FlagsError(description: "cannot lock \(path).lock", transient: true)
        }

        var file = try FlagsFile.read(path)
        let key = "\(request.service)@\(request.environment)"
        var entry =
            file.targets[key]
            ?? FlagsFile.Entry(
                service: request.service, environment: request.environment, stable: request.version,
                candidate: nil, weight: 0, match: nil, revision: request.revision, updatedAt: Date())
        entry.revision = request.revision
        entry.updatedAt = Date()
        switch request.action {
        case .deploy:
            if let stable = request.previousVersion, request.weight < 100 {
                entry.stable = stable
                entry.candidate = request.version
                entry.weight = request.weight
            } else {
                entry.stable = request.version
                entry.candidate = nil
                entry.weight = 0
            }
            entry.match = nil
        case .setWeight, .split:
            guard entry.candidate == request.version else {
                throw FlagsError(description: "\(key): \(request.version) is not the candidate; deploy it first")
            }
            entry.weight = request.weight
            if request.action == .split, case .object(let traffic)? = request.traffic { entry.match = traffic["match"] }
        case .promote, .rollback:
            entry.stable = request.version
            entry.candidate = nil
            entry.weight = 0
            entry.match = nil
        case .remove:
            file.targets[key] = nil
            try write(file)
            return "\(key): removed from \(path)"
        case .health:
            guard entry.stable == request.version || entry.candidate == request.version else {
                throw FlagsError(description: "\(key): \(path) does not publish \(request.version)")
            }
            return "\(key): \(request.version) is published"
        case .scaleDown:
            return "\(key): nothing to scale down"
        case .mirror:
            throw FlagsError(
                description: "the flags executor cannot mirror traffic (applications split by user); "
                    + "use a traffic executor for shadow rollouts")
        case .measure:
            throw FlagsError(description: "the flags executor takes no measurements")
        }
        file.targets[key] = entry
        try write(file)
        return "\(key): stable \(entry.stable)"
            + (entry.candidate.map { ", candidate \($0) at \(entry.weight)%" } ?? "")
    }

    private func write(_ file: FlagsFile) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let temporary = path + ".tmp-\(getpid())"
        try encoder.encode(file).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            throw FlagsError(
                description: "cannot replace \(path): \(String(cString: strerror(errno)))", transient: true)
        }
    }
}
