import TideManifest

/// Live targets held in memory by the process that opened the state, so a pass over 30,000 targets does not read
/// 30,000 rows each time.
///
/// The store stays the truth. Every change to the `targets` table, by any process (a `tide approve` in another
/// shell, a second reconciler, a person with `sqlite3`), moves `targets_version` through a trigger; a read compares
/// it with the version the cache holds, in the same read transaction as any rows it then reads, and reads the
/// table again when it moved. This process's own writes go through: the rows it wrote are read back in the write's
/// transaction (as a read would return them) and replace theirs, when no other write came between the cache and
/// this one.
///
/// What must never happen: a read answered from memory after another process changed a target (the version moved,
/// so it reads again); a cached row that differs from what the table holds (write-through replaces rows only when
/// the cache was at the version the write started from, and rows read back, not the values given).
struct LiveTargetCache: Sendable {
    var version: Int64
    /// In the order a read returns them (environment, then service); the rows in `stale` as they were before this
    /// process wrote them.
    private(set) var targets: [LiveTarget]
    private var index: [TargetID: Int]
    /// Targets this process wrote since they were read: read again (those rows only) at the next read, so a write
    /// costs no decoding on the writer's queue and a pass that reads once reads each changed row once.
    private(set) var stale: Set<TargetID> = []

    init(version: Int64, targets: [LiveTarget]) {
        self.version = version
        self.targets = targets
        index = Dictionary(targets.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// `targets` with `rows` (read at `version`) in place of the stale ones; nil when a row went missing.
    func patched(_ rows: [LiveTarget]) -> LiveTargetCache? {
        var patched = self
        for row in rows {
            guard let place = index[row.id] else { return nil }
            patched.targets[place] = row
        }
        guard rows.count == stale.count else { return nil }  // a stale target was removed meanwhile
        patched.stale = []
        return patched
    }

    /// What a write did to the `targets` table.
    enum Written: Sendable {
        /// Nothing.
        case none
        /// Moved the version from `before` to `after`, writing `ids` (nil when the write removed targets).
        case targets(before: Int64, after: Int64, ids: [TargetID]?)
    }

    /// Takes a write of this process in; false when it cannot (the caller drops the cache and the next read reads
    /// the table): another write came between the cache and this one, or a target appeared or went.
    mutating func follow(_ written: Written) -> Bool {
        guard case .targets(let before, let after, let ids) = written else { return true }
        guard version == before, let ids, ids.allSatisfy({ index[$0] != nil }) else { return false }
        stale.formUnion(ids)
        version = after
        return true
    }
}

extension Optional where Wrapped == LiveTargetCache {
    /// `LiveTargetCache.follow`, dropping the cache when the write cannot be taken in.
    mutating func follow(_ written: LiveTargetCache.Written) {
        if self?.follow(written) == false { self = nil }
    }
}
