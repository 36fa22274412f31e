import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
public import TideManifest

/// Measurements over HTTP for the analysis providers `prometheus`, `http` and `probe`.
public enum HTTPMeasurements {
    /// What one measurement produced: a value (nil: no data), or why none could be taken.
    public typealias Outcome = Result<JSONValue?, MeasurementError>

    public struct MeasurementError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Answers larger than this are refused.
    static let bodyLimit = 4 << 20

    /// `GET url` → status and body, both within `timeout`: a server that sends its head and then trickles (or
    /// stalls) its body times out too, and never holds the pass (hardening round two, addendum 2).
    static func get(_ url: String, headers: [String: String], timeout: Double) async throws -> (Int, ByteBuffer) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "tide")
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
        let work = Task {
            let response = try await HTTPClient.shared.execute(request, deadline: deadline)
            return (Int(response.status.code), try await response.body.collect(upTo: bodyLimit))
        }
        let expired = Mutex(false)
        let alarm = Monotonic.after(seconds: timeout) {
            expired.withLock { $0 = true }
            work.cancel()
        }
        defer { alarm.cancel() }
        do {
            // The caller cancelled (Tide is stopping): so is the request.
            return try await withTaskCancellationHandler {
                try await work.value
            } onCancel: {
                work.cancel()
            }
        } catch  where expired.withLock({ $0 }) {
            throw MeasurementError("no whole answer within \(ManifestDuration.format(timeout))")
        }
    }

    /// An instant query: `GET address/api/v1/query?query=…`.
    public static func prometheus(address: String, query: String, timeout: Double) async -> Outcome {
        guard var components = URLComponents(string: address) else {
            return .failure(MeasurementError("'\(address)' is not a URL"))
        }
        components.path =
            (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path)
            + "/api/v1/query"
        components.queryItems = [URLQueryItem(name: "query", value: query)]
        // URLComponents leaves '+' alone in queries; Prometheus would read it as a space.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        guard let url = components.string else { return .failure(MeasurementError("cannot build the query URL")) }
        do {
            let (status, body) = try await get(url, headers: [:], timeout: timeout)
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)) else {
                return .failure(MeasurementError("Prometheus answered \(status) with something that is not JSON"))
            }
            guard case .object(let answer) = json, answer["status"] == .string("success"),
                case .object(let data)? = answer["data"]
            else {
                let message = (json.member("error")).map { "\($0)" } ?? "HTTP \(status)"
                return .failure(MeasurementError("Prometheus query failed: \(message)"))
            }
            return .success(try prometheusResult(data))
        } catch let error as MeasurementError {
            return .failure(error)
        } catch {
            return .failure(MeasurementError("Prometheus at \(address): \(error)"))
        }
    }

    /// A scalar → a number; a vector → a list of numbers (empty: no data); a matrix is refused.
    static func prometheusResult(_ data: [String: JSONValue]) throws -> JSONValue? {
        func number(_ pair: JSONValue?) -> JSONValue {
            guard case .array(let items)? = pair, items.count == 2, case .string(let text) = items[1],
                let value = Double(text)
            else { return .null }
            return value.isFinite ? .double(value) : .null
        }
        switch data["resultType"] {
        case .string("scalar")?:
            let value = number(data["result"])
            return value == .null ? nil : value
        case .string("vector")?:
            guard case .array(let samples)? = data["result"], !samples.isEmpty else { return nil }
            return .array(samples.map { number($0.member("value")) })
        case let other:
            throw MeasurementError(
                "Prometheus returned a \(other.map { "\($0)" } ?? "result") of a type analysis cannot use; "
                    + "write an instant query that returns a scalar or a vector")
        }
    }

    /// `GET url`: the JSON answer.
    public static func http(url: String, headers: [String: String], timeout: Double) async -> Outcome {
        do {
            let (status, body) = try await get(url, headers: headers, timeout: timeout)
            guard (200..<300).contains(status) else {
                return .failure(MeasurementError("GET \(url) answered HTTP \(status)"))
            }
            let text = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { return .success(nil) }
            if let number = Double(text) { return .success(number.isFinite ? .double(number) : nil) }
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
                return .failure(MeasurementError("GET \(url) answered something that is neither JSON nor a number"))
            }
            return .success(json)
        } catch {
            return .failure(MeasurementError("GET \(url): \(error)"))
        }
    }

    /// `requests` GETs, `concurrency` at a time: error rate and latency percentiles (ms). A request fails on a
    /// 5xx answer, a connection error or a timeout. Nothing answered at all is a measurement error.
    public static func probe(
        url: String, requests: Int, concurrency: Int, timeout: Double, headers: [String: String]
    ) async -> Outcome {
        struct Sample: Sendable {
            var milliseconds: Double
            var failed: Bool
            var error: String?
        }
        let samples = await withTaskGroup(of: [Sample].self) { group in
            let workers = max(1, min(concurrency, requests))
            for worker in 0..<workers {
                let share = requests / workers + (worker < requests % workers ? 1 : 0)
                group.addTask {
                    var taken: [Sample] = []
                    for _ in 0..<share {
                        let start = ContinuousClock.now
                        do {
                            let (status, _) = try await get(url, headers: headers, timeout: timeout)
                            let elapsed = ContinuousClock.now - start
                            taken.append(Sample(milliseconds: milliseconds(elapsed), failed: status >= 500))
                        } catch {
                            let elapsed = ContinuousClock.now - start
                            taken.append(Sample(milliseconds: milliseconds(elapsed), failed: true, error: "\(error)"))
                        }
                    }
                    return taken
                }
            }
            var all: [Sample] = []
            for await part in group { all += part }
            return all
        }
        let errors = samples.filter(\.failed).count
        if errors == samples.count, let reason = samples.compactMap(\.error).first {
            return .failure(MeasurementError("no request to \(url) was answered: \(reason)"))
        }
        let latencies = samples.map(\.milliseconds).sorted()
        func percentile(_ p: Double) -> JSONValue {
            guard !latencies.isEmpty else { return .null }
            let rank = Int((p * Double(latencies.count)).rounded(.up)) - 1
            return .double((latencies[max(0, min(rank, latencies.count - 1))] * 100).rounded() / 100)
        }
        return .success(
            .object([
                "requests": .int(Int64(samples.count)), "errors": .int(Int64(errors)),
                "errorRate": .double(samples.isEmpty ? 0 : Double(errors) / Double(samples.count)),
                "p50": percentile(0.50), "p95": percentile(0.95), "p99": percentile(0.99),
            ]))
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}

extension JSONValue {
    /// The member `key` of an object.
    fileprivate func member(_ key: String) -> JSONValue? {
        if case .object(let members) = self { members[key] } else { nil }
    }
}
