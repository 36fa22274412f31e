import Synchronization

/// A flag that is set once and read from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() { value.store(true, ordering: .releasing) }

    /// Sets it; returns whether this call did (it was not set before).
    func setOnce() -> Bool { !value.exchange(true, ordering: .acquiringAndReleasing) }
}
