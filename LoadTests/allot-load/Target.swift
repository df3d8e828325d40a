import EventHTTP
import EventLoops
import Foundation
import Glibc
import ProcessSupervision

/// A blocking client for the admin API and checks, on a loop of its own.
final class BlockingClient: @unchecked Sendable {
    private let loop = EventLoop(index: 99)
    private var connection: HTTPClientConnection?
    let host: String
    let port: UInt16
    let token: String?

    init(host: String, port: UInt16, token: String?) {
        self.host = host
        self.port = port
        self.token = token
        let thread = Thread { [loop] in loop.run() }
        thread.name = "allot-load-admin"
        thread.start()
    }

    func request(_ method: String, _ path: String, body: String? = nil) -> (status: Int, body: String) {
        let done = DispatchSemaphore(value: 0)
        let result = Unchecked(ResultBox())
        let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        _ = loop.execute { [self] in
            if connection == nil { connection = HTTPClientConnection(loop: loop, host: host, port: port, timeoutSeconds: 60) }
            connection!.send(method: method, path: path, headers: headers, body: Array((body ?? "").utf8)) { response in
                result.value.status = response.status
                result.value.body = String(decoding: response.body, as: UTF8.self)
                done.signal()
            }
        }
        done.wait()
        return (result.value.status, result.value.body)
    }

    /// Polls `/readyz` for up to 15 s; true once the server says ready.
    func waitUntilReady() -> Bool {
        for _ in 0..<300 {
            if request("GET", "/readyz").status == 200 { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    func json(_ method: String, _ path: String, body: String? = nil) -> [String: Any] {
        let answer = request(method, path, body: body)
        return (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
    }

    private final class ResultBox: @unchecked Sendable {
        var status = 0
        var body = ""
    }
}

/// A server's address, from `http://HOST:PORT`.
struct Endpoint: Sendable, Equatable {
    let host: String
    let port: UInt16

    init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    init(url: String) throws {
        guard let parsed = URL(string: url), parsed.scheme == "http", let host = parsed.host, let port = parsed.port,
              let port = UInt16(exactly: port) else {
            throw HarnessError("--url takes http://HOST:PORT, got \(url)")
        }
        self.init(host: host, port: port)
    }
}

/// The server under load: one this harness starts (with its own Redis,
/// in a fresh data directory), or front nodes already running at URLs (the
/// first is asked to set the campaign up).
final class ServerUnderTest {
    let host: String
    let port: UInt16
    /// Where citizens go: every URL given, or the server started here.
    let endpoints: [Endpoint]
    let adminToken: String
    /// Known when the harness started the server, or when given.
    let databasePath: String?
    let dataDirectory: String?
    private let process: ChildProcess?

    init(urls: [String], adminToken: String?, databasePath: String?, dataDirectory: String?,
         allotBinary: String, serverThreads: Int?) throws {
        if !urls.isEmpty {
            let endpoints = try urls.map(Endpoint.init(url:))
            guard let token = adminToken ?? ProcessInfo.processInfo.environment["ALLOT_ADMIN_TOKEN"] else {
                throw HarnessError("--url needs --admin-token (or ALLOT_ADMIN_TOKEN) to set up its campaign")
            }
            self.endpoints = endpoints
            self.host = endpoints[0].host
            self.port = endpoints[0].port
            self.adminToken = token
            self.databasePath = databasePath
            self.dataDirectory = dataDirectory
            process = nil
            return
        }
        guard FileManager.default.isExecutableFile(atPath: allotBinary) else {
            throw HarnessError("no server binary at \(allotBinary): run `swift build -c release --product allot`, or give --url")
        }
        let directory = dataDirectory ?? NSTemporaryDirectory() + "allot-load-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let token = "load-" + UUID().uuidString
        setenv("ALLOT_ADMIN_TOKEN", token, 1)
        let port = try RedisSupervisor.freePort()
        var arguments = ["serve", "--port", String(port), "--data-dir", directory, "--log-level", "error"]
        if let serverThreads { arguments += ["--threads", String(serverThreads)] }
        process = try ChildProcess(path: allotBinary, arguments: arguments, outputPath: directory + "/server.log")
        host = "127.0.0.1"
        self.port = UInt16(port)
        endpoints = [Endpoint(host: host, port: UInt16(port))]
        self.adminToken = token
        self.databasePath = directory + "/allot.db"
        self.dataDirectory = directory
        if BlockingClient(host: host, port: self.port, token: nil).waitUntilReady() { return }
        process?.stop()
        throw HarnessError("the server did not become ready on port \(port)")
    }

    var startedHere: Bool { process != nil }

    /// Stops a server the harness started. Its data directory goes too,
    /// unless asked to keep it (a failed run: the evidence stays).
    func stop(keepData: Bool) {
        guard let process else { return }
        process.stop()
        if let dataDirectory {
            if keepData { log("server data kept in \(dataDirectory)") }
            else { try? FileManager.default.removeItem(atPath: dataDirectory) }
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Creates the run's campaign through the admin API and waits until every
/// loop's snapshot shows it.
enum CampaignSetup {
    /// `settings`: more of the campaign's JSON (`,"hold_seconds":5`).
    static func create(_ client: BlockingClient, slots: Int, capacity: Int, limit: Int, buckets: Int = 1,
                       rateLimits: String?, settings: String = "") throws -> CampaignPlan {
        let id = "load-" + String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)
        let now = Date()
        let format = ISO8601DateFormatter()
        let created = client.request("POST", "/v1/admin/campaigns", body: """
            {"id":"\(id)","name":"Load test \(id)","status":"open","id_scheme":"cn-resident","per_citizen_limit":\(limit),
             "opens_at":"\(format.string(from: now.addingTimeInterval(-60)))","closes_at":"\(format.string(from: now.addingTimeInterval(86_400)))",
             "buckets":\(buckets)\(settings)}
            """)
        guard created.status == 201 else { throw HarnessError("creating the campaign: \(created.status) \(created.body)") }
        let sites = (0..<max(1, slots / 10)).map { #"{"id":"site-\#($0)","name":"Site \#($0)","address":"\#($0) Load Street"}"# }
        let putSites = client.request("PUT", "/v1/admin/campaigns/\(id)/sites", body: #"{"sites":[\#(sites.joined(separator: ","))]}"#)
        guard putSites.status == 200 else { throw HarnessError("sites: \(putSites.status) \(putSites.body)") }
        let slotIDs = (0..<slots).map { "slot-\($0)" }
        for chunk in stride(from: 0, to: slots, by: 10_000) {
            let part = (chunk..<min(slots, chunk + 10_000)).map { index in
                #"{"id":"slot-\#(index)","site_id":"site-\#(index % max(1, slots / 10))","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":\#(capacity)}"#
            }
            let put = client.request("PUT", "/v1/admin/campaigns/\(id)/slots", body: #"{"slots":[\#(part.joined(separator: ","))]}"#)
            guard put.status == 200 else { throw HarnessError("slots: \(put.status) \(put.body)") }
        }
        if let rateLimits {
            let put = client.request("PUT", "/v1/admin/campaigns/\(id)/rate-limits", body: rateLimits)
            guard put.status == 200 else { throw HarnessError("rate limits: \(put.status) \(put.body)") }
        }
        for _ in 0..<100 {
            if (client.json("GET", "/v1/campaigns/\(id)/slots")["slots"] as? [Any])?.count == slots {
                Thread.sleep(forTimeInterval: 0.6)  // every loop's snapshot, not just one
                return CampaignPlan(id: id, slots: slotIDs, capacityPerSlot: capacity, perCitizenLimit: limit)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("the campaign never became visible")
    }
}
