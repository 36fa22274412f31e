import Testing
import TideManifest

@Suite("Event kinds: the names a manifest and tide history --json use")
struct EventKindTests {
    @Test("every kind has a distinct dotted name, read back by named:")
    func names() {
        #expect(Set(EventKind.names).count == EventKind.allCases.count)
        for kind in EventKind.allCases {
            #expect(EventKind(named: kind.rawValue) == kind)
            #expect(kind.rawValue.contains("."), "\(kind.rawValue) is a dotted name")
        }
        #expect(EventKind(named: "deployment.failed") == .deploymentFailed)
        #expect(EventKind(named: "deployment.Failed") == nil)
        #expect(EventKind(named: "deploymentFailed") == nil)
    }
}
