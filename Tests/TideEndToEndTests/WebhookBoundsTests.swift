import Foundation
import Testing
import TideTestSupport

/// Webhook bodies are read before their signature can be checked: what a sender without the secret can make
/// Tide hold is bounded all together — in count, bytes and time (hardening round two, 2; addendum, 4). Through a
/// real `tide run`, with a Python client that opens many half-sent requests.
@Suite("tide run: what unauthenticated connections and webhook bodies can take is bounded as a whole")
struct WebhookBoundsTests {
    @Test(
        "one address holding 40 slow little bodies keeps no one else out: a signed push from another address is taken at once (hardening round two, review)"
    )
    func oneSendersShare() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        let script = """
            import socket, sys, time
            port = int(sys.argv[1]); socks = []
            for i in range(40):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /hooks/generic HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n"
                          b"X-Tide-Signature: sha256=00\\r\\nContent-Length: 1000\\r\\n\\r\\n" + b"x" * 10)
                socks.append(s)
            time.sleep(1)
            body = b'{"ref":"refs/heads/main"}'
            c = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0)); c.settimeout(10)
            c.sendall(b"POST /hooks/generic HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n"
                      + b"X-Tide-Signature: " + sys.argv[2].encode() + b"\\r\\nContent-Length: "
                      + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
            print("other=" + c.recv(64)[9:12].decode(), flush=True)
            for s in socks: s.close()
            """
        let signature = await ServiceTests.signed(#"{"ref":"refs/heads/main"}"#)["X-Tide-Signature"] ?? ""
        let result = try await detached {
            try runProcess("/usr/bin/python3", ["-c", script, "\(daemon.port)", signature])
        }
        // Before the share: the 40 filled all 32 places, and the push was 503.
        #expect(result.standardOutput.contains("other=200"), "\(result.combined)")
        #expect(await daemon.stop() == 0)
    }

    @Test(
        "300 half-sent 1 MB bodies: Tide holds a few MB, answers the rest 503 at once, and a real push still works after"
    )
    func halfSentBodies() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        let before = residentMegabytes(of: daemon.pid)
        // Each connection declares 1 MB, sends 900 KB and holds; the script reports how many were answered (and
        // with what) while the others hang, then holds them 3 s more and closes them all.
        let script = """
            import socket, sys, time
            port = int(sys.argv[1]); answered = {}; socks = []
            for i in range(300):
                s = socket.create_connection(("127.0.0.1", port)); s.settimeout(0.05)
                s.sendall(b"POST /hooks/generic HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n"
                          b"X-Tide-Signature: sha256=00\\r\\nContent-Length: 1000000\\r\\n\\r\\n")
                try:
                    s.sendall(b"x" * 900000)
                except Exception:
                    pass
                socks.append(s)
            time.sleep(1)
            rss = [l for l in open(f"/proc/{sys.argv[2]}/status") if l.startswith("VmRSS:")][0].split()[1]
            print(f"rss={int(rss) // 1024}", flush=True)
            for s in socks:
                try:
                    data = s.recv(64)
                    if data.startswith(b"HTTP/1.1 "):
                        code = data[9:12].decode(); answered[code] = answered.get(code, 0) + 1
                except Exception:
                    pass
            print(" ".join(f"{k}={v}" for k, v in sorted(answered.items())), flush=True)
            time.sleep(3)
            for s in socks: s.close()
            """
        let flood = try await detached {
            try runProcess("/usr/bin/python3", ["-c", script, "\(daemon.port)", "\(daemon.pid)"])
        }
        let held = flood.standardOutput.split(separator: "\n").first { $0.hasPrefix("rss=") }
        let during = held.flatMap { Int($0.dropFirst(4)) } ?? Int.max
        #expect(flood.status == 0, "\(flood.combined)")
        #expect(flood.standardOutput.contains("503="), "refused at once: \(flood.standardOutput)")
        // Before the bound: 300 × 900 KB held (about 270 MB).
        #expect(during - before < 64, "RSS grew from \(before) to \(during) MB")
        #expect(try await daemon.get("/healthz").status == 200)
        let push = #"{"ref":"refs/heads/main"}"#
        let accepted = try await daemon.request(
            "POST", "/hooks/generic", headers: await ServiceTests.signed(push), body: Array(push.utf8))
        #expect(accepted.status == 200, "\(accepted.body)")
        #expect(await daemon.stop() == 0)
    }

    @Test(
        "1,100 connections trickling bytes under a 1,024-descriptor limit: a deploy during them succeeds, and the flood is cut (hardening round two, 1)"
    )
    func descriptorExhaustion() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let daemon = try await remote.daemon(["--interval", "1s"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        // systemd's default: 1,024 descriptors, soft and hard (so Tide cannot raise it).
        let limited = try await runProcess("/usr/bin/prlimit", ["--pid", "\(daemon.pid)", "--nofile=1024:1024"])
        #expect(limited.status == 0, "\(limited.combined)")
        // From eleven addresses (per-peer bounds apply to each), 100 connections each, one byte each, held 8 s.
        let script = """
            import socket, sys, time
            port = int(sys.argv[1]); socks = []; refused = 0
            for peer in range(2, 13):
                for i in range(100):
                    try:
                        s = socket.socket(); s.bind((f"127.0.0.{peer}", 0)); s.connect(("127.0.0.1", port))
                        s.sendall(b"P"); socks.append(s)
                    except OSError:
                        refused += 1
            time.sleep(1)
            closed = 0
            for s in socks:
                s.setblocking(False)
                try:
                    if s.recv(1) == b"": closed += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
            print(f"open={len(socks)} refused={refused} closed={closed}", flush=True)
            time.sleep(7)
            """
        async let flood = detached { try runProcess("/usr/bin/python3", ["-c", script, "\(daemon.port)"]) }
        try await Task.sleep(for: .seconds(2))
        try await remote.repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        let deadline = Date().addingTimeInterval(20)
        while !remote.repo.calls().contains("health api@prod 1.1.0"), Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let result = try await flood
        #expect(remote.repo.calls().contains("health api@prod 1.1.0"), "\(remote.repo.calls()) \(daemon.log())")
        #expect(!daemon.log().contains("Too many open files"), "\(daemon.log())")
        // Over the bounds (512 in all, 128 from one address), connections are closed at once.
        let counts = result.standardOutput.split(separator: " ").reduce(into: [String: Int]()) {
            let pair = $1.split(separator: "=")
            if pair.count == 2 { $0[String(pair[0])] = Int(pair[1].trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        #expect((counts["closed"] ?? 0) >= 500, "\(result.combined)")
        let status = try await remote.repo.tide("status", "--json", extra: ["--repo", remote.url])
        #expect(status.standardOutput.contains("1.1.0"), "\(status.combined)")
        #expect(try await daemon.get("/healthz").status == 200)
        #expect(await daemon.stop() == 0)
    }
}
