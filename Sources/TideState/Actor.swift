import Foundation
public import TideManifest

/// Who asked for something Tide did: a person at a terminal (the operating-system user running the command, and
/// the user behind `sudo`), or Tide itself. Recorded with every operator event and in the `Tide-Actor:` trailer
/// of the commits Tide writes. A `--by` or `--comment` text a person types is a comment, never the identity: the
/// identity is what the operating system says.
public struct Actor: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The user name (`getpwuid(geteuid())`), or `tide` for Tide's own decisions.
    public var user: String
    /// The effective user id, when a person acted.
    public var uid: UInt32?
    /// The user who ran the command through sudo (`SUDO_USER`), when that is another user.
    public var sudoUser: String?
    /// What the person wrote for the record (`--comment`, `--by`).
    public var comment: String?
    /// How the request reached Tide, when not from the process that carried it out (`tide run (pid 123)`).
    public var via: String?

    public init(user: String, uid: UInt32? = nil, sudoUser: String? = nil, comment: String? = nil, via: String? = nil) {
        self.user = user
        self.uid = uid
        self.sudoUser = sudoUser
        self.comment = comment
        self.via = via
    }

    /// Tide's own decisions (an automatic rollback, a promotion after a bake).
    public static let tide = Actor(user: "tide")

    /// `carol`, or `carol (sudo from dave)`.
    public var description: String {
        sudoUser.map { "\(user) (sudo from \($0))" } ?? user
    }

    /// The person who ran this process: the effective user's name, and `SUDO_USER` when sudo was used.
    public static func current(comment: String? = nil) -> Actor {
        let uid = geteuid()
        var name = "uid \(uid)"
        if let entry = getpwuid(uid), let pointer = entry.pointee.pw_name {
            name = String(cString: pointer)
        }
        let environment = ProcessInfo.processInfo.environment
        var sudo: String?
        if let sudoUser = environment["SUDO_USER"], !sudoUser.isEmpty, sudoUser != name,
            sudoUser.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control })
        {
            sudo = sudoUser
        }
        let text = comment?.trimmingCharacters(in: .whitespacesAndNewlines)
        return Actor(user: name, uid: uid, sudoUser: sudo, comment: text?.isEmpty == true ? nil : text)
    }

    /// The details an event records about who acted: `by` (what `tide history` has always shown), and the rest.
    public var details: [String: JSONValue] {
        var details: [String: JSONValue] = ["by": .string(description)]
        if let uid { details["uid"] = .int(Int64(uid)) }
        if let sudoUser { details["sudoUser"] = .string(sudoUser) }
        if let comment { details["comment"] = .string(comment) }
        if let via { details["via"] = .string(via) }
        return details
    }

    /// The `Tide-Actor:` trailer value of a commit written for this actor: `carol (uid 1001) via tide rollback`.
    public func trailer(_ what: String) -> String {
        var words = description
        if let uid { words += " (uid \(uid))" }
        words += " via \(what)"
        if let via { words += ", \(via)" }
        return words
    }
}

extension Actor: ExpressibleByStringLiteral {
    /// An actor named in source code (tests, Tide's own decisions): a literal, never text someone typed.
    public init(stringLiteral user: String) {
        self.init(user: user)
    }
}
