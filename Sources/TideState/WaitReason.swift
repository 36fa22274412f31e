import Foundation

/// A gate that keeps a version from starting in an environment.
public enum GateKind: String, Sendable, Codable, CaseIterable {
    /// The version does not run healthy in a required environment yet.
    case requires
    /// It runs there, but not for the environment's `bake` yet.
    case bake
    /// The environment wants `tide approve` for this version.
    case approval
    /// Outside the environment's deployment windows.
    case window
    /// Inside a freeze.
    case freeze
    /// A Policy rule the change does not meet (a stronger strategy); needs a change to desired state.
    case policy
    /// An operator paused the rollout in progress (`tide pause`): newer commits wait for `tide resume`.
    case paused
}

/// Why a target's desired version has not started (or not finished starting) — beside `LiveTarget.waiting`, the
/// sentence status prints. Stored as JSON: a name (`"approval"`, `"database"`, `"refused"`) or, for an error,
/// `{"error": "…"}`.
public enum WaitReason: Sendable, Hashable, Codable {
    /// A gate holds it (see `GateKind`).
    case gate(GateKind)
    /// A migration it needs waits for its database.
    case database
    /// Tide will not start it (a rollback past a contracted migration); the target keeps what it runs.
    case refused
    /// The last pass failed acting on it, with this message; the next pass tries again.
    case error(String)

    /// A reason by the name it is stored under (`requires` … `paused`, `database`, `refused`), nil otherwise.
    public init?(name: String) {
        switch name {
        case "database": self = .database
        case "refused": self = .refused
        default:
            guard let kind = GateKind(rawValue: name) else { return nil }
            self = .gate(kind)
        }
    }

    /// The name it is stored under; "error" for an error.
    public var name: String {
        switch self {
        case .gate(let kind): kind.rawValue
        case .database: "database"
        case .refused: "refused"
        case .error: "error"
        }
    }

    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    private enum Key: String, CodingKey { case error }

    public init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            self = .error(try object.decode(String.self, forKey: .error))
            return
        }
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let reason = WaitReason(name: name) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "no wait reason \(name)"))
        }
        self = reason
    }

    public func encode(to encoder: any Encoder) throws {
        if case .error(let message) = self {
            var object = encoder.container(keyedBy: Key.self)
            try object.encode(message, forKey: .error)
        } else {
            var single = encoder.singleValueContainer()
            try single.encode(name)
        }
    }

    /// The `waiting_on` column: JSON, or — rows written before v13 — names joined by commas (names no version
    /// wrote are dropped rather than failing the read).
    public static func column(_ text: String?) -> [WaitReason] {
        guard let text, !text.isEmpty else { return [] }
        if text.hasPrefix("["), let reasons = try? JSONDecoder().decode([WaitReason].self, from: Data(text.utf8)) {
            return reasons
        }
        return text.split(separator: ",").compactMap { WaitReason(name: String($0)) }
    }

    /// The `waiting_on` column for `reasons` (nil for none).
    public static func column(_ reasons: [WaitReason]) throws -> String? {
        guard !reasons.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(reasons), as: UTF8.self)
    }
}
