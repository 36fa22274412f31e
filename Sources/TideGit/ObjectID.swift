internal import CLibgit2

/// A git object id (SHA-1), kept as its 40-character lowercase hex form.
public struct ObjectID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let hex: String

    /// Accepts a full 40-character hex id; anything else is nil.
    public init?(hex: String) {
        guard hex.utf8.count == 40, hex.utf8.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.hex = hex.lowercased()
    }

    init(_ oid: git_oid) {
        var copy = oid
        var buffer = [CChar](repeating: 0, count: 40)
        git_oid_fmt(&buffer, &copy)
        self.hex = String(decoding: buffer.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    init(_ pointer: UnsafePointer<git_oid>) {
        self.init(pointer.pointee)
    }

    var oid: git_oid {
        var result = git_oid()
        // hex is validated at construction, so parsing cannot fail.
        _ = git_oid_fromstr(&result, hex)
        return result
    }

    /// The first 12 characters, as people quote commits.
    public var short: String { String(hex.prefix(12)) }

    public var description: String { hex }

    public static func < (lhs: ObjectID, rhs: ObjectID) -> Bool { lhs.hex < rhs.hex }

    /// The id git would give `bytes` stored as a blob: a stable content digest that needs no repository.
    public static func blobHash(of bytes: [UInt8]) -> ObjectID {
        _ = libgit2Initialized
        var oid = git_oid()
        let rc = bytes.withUnsafeBytes { raw in
            git_odb_hash(&oid, raw.baseAddress, raw.count, GIT_OBJECT_BLOB)
        }
        // Hashing an in-memory buffer only fails on allocation failure.
        precondition(rc == 0, "git_odb_hash failed")
        return ObjectID(oid)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = ObjectID(hex: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a git object id: \(text)")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (48...57).contains(self) || (65...70).contains(self) || (97...102).contains(self)
    }
}
