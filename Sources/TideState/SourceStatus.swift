public import Foundation
public import TideGit

/// Where Tide gets the config repo from, and how its last fetches and pushes went (a remote repo only). Nothing
/// secret: the URL carries no credentials (`RemoteURL` refuses them).
public struct SourceStatus: Sendable, Codable, Hashable {
    public var url: String
    public var branch: String?
    /// The head the last successful fetch brought.
    public var fetchedRevision: ObjectID?
    public var lastFetchAt: Date?
    public var lastFetchSuccessAt: Date?
    /// Why the last fetch failed; nil when it succeeded.
    public var lastFetchError: String?
    /// Fetches failed in a row (the backoff grows with it).
    public var consecutiveFetchFailures: Int
    public var lastPushAt: Date?
    /// Why the last push was rejected or failed; nil when it went through.
    public var lastPushError: String?

    public init(
        url: String, branch: String? = nil, fetchedRevision: ObjectID? = nil, lastFetchAt: Date? = nil,
        lastFetchSuccessAt: Date? = nil, lastFetchError: String? = nil, consecutiveFetchFailures: Int = 0,
        lastPushAt: Date? = nil, lastPushError: String? = nil
    ) {
        self.url = url
        self.branch = branch
        self.fetchedRevision = fetchedRevision
        self.lastFetchAt = lastFetchAt
        self.lastFetchSuccessAt = lastFetchSuccessAt
        self.lastFetchError = lastFetchError
        self.consecutiveFetchFailures = consecutiveFetchFailures
        self.lastPushAt = lastPushAt
        self.lastPushError = lastPushError
    }
}
