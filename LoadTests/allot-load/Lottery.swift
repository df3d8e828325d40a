import AllotDomain
import ArgumentParser
import EventLoops
import Foundation
import SQLiteStore

/// Issue 14's lottery, end to end through the API: a lottery campaign and
/// its commitment, N registrations spread over the window (open loop),
/// the draw once it closes, every winner's reservation in SQLite, and the
/// published files checked by `allot draw verify`, which must also refuse
/// them once one byte of the results changes.
struct Lottery: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A lottery end to end: registrations over a window, a draw, winners' reservations, the files verified.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Citizens registering (each once).") var registrations = 1_000_000
    @Option(help: "Places drawn (spread evenly over the slots).") var places = 100_000
    @Option(help: "Seconds of the registration window.") var windowSeconds = 60.0
    @Option(help: "Give up on the draw and the persistence after this many seconds.") var deadlineSeconds = 600.0

    func run() throws {
        guard places % common.slots == 0 else { throw ValidationError("--places must be a multiple of --slots") }
        let server = try ServerUnderTest(urls: common.url, adminToken: common.adminToken, databasePath: common.db,
                                         dataDirectory: common.dataDir, allotBinary: common.allot, serverThreads: common.serverThreads)
        var passed = false
        defer { server.stop(keepData: !passed) }
        let admin = BlockingClient(host: server.host, port: server.port, token: server.adminToken)
        let opens = Date().addingTimeInterval(3), closes = opens.addingTimeInterval(windowSeconds)
        let id = try makeCampaign(admin, opens: opens, closes: closes)
        let committed = admin.json("POST", "/v1/admin/campaigns/\(id)/draw/commit")
        guard let commitment = committed["commitment"] as? String else { throw HarnessError("commit: \(committed)") }
        log("lottery \(id): committed \(commitment.prefix(16))…; \(registrations) registrations over \(windowSeconds) s")

        Thread.sleep(until: opens.addingTimeInterval(0.05))
        let start = monotonicMicros()
        let recorder = Recorder(startMicros: start)
        let threads = max(1, common.threads)
        // Spread over all but the window's last 5 % (and at least its last
        // 0.5 s): a registration due at the very end would meet the close.
        let spreadMicros = Int64(max(windowSeconds * 0.95, windowSeconds - 0.5) * 1_000_000) - 50_000
        let workloads = (0..<threads).map {
            RegistrationWorkload(campaign: id, slots: common.slots, sites: max(1, common.slots / 10), registrations: registrations,
                                 windowMicros: spreadMicros, thread: $0, threads: threads, startMicros: start, seed: common.seed)
        }
        Driver(endpoints: server.endpoints, recorder: recorder, deadlineMicros: start + Int64((windowSeconds + 60) * 1_000_000))
            .run(workloads: workloads, connectionsPerThread: common.connections)
        let registrationSeconds = Double(monotonicMicros() - start) / 1_000_000
        let registered = workloads.reduce(0) { $0 + $1.created }
        let refused = workloads.reduce(into: [String: Int]()) { total, workload in total.merge(workload.refused, uniquingKeysWith: +) }
        let latency = recorder.snapshot().all
        log(String(format: "registered %d of %d in %.1f s (%.0f/s); p50 %.2f ms, p99 %.2f ms; refused %@", registered, registrations,
                   registrationSeconds, Double(registered) / registrationSeconds, Double(latency.valueAtPercentile(50)) / 1000,
                   Double(latency.valueAtPercentile(99)) / 1000, "\(refused)"))

        Thread.sleep(until: closes.addingTimeInterval(0.5))
        let drawStarted = Date()
        let run = admin.request("POST", "/v1/admin/campaigns/\(id)/draw/run", body: #"{"public_value":"allot-load seed \#(common.seed)"}"#)
        guard run.status == 202 else { throw HarnessError("run: \(run.status) \(run.body)") }
        var draw: [String: Any] = [:]
        while Date().timeIntervalSince(drawStarted) < deadlineSeconds {
            draw = admin.json("GET", "/v1/campaigns/\(id)/draw")
            if let state = draw["state"] as? String, state != "running" { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        let drawSeconds = Date().timeIntervalSince(drawStarted)
        guard draw["state"] as? String == "published", let winners = draw["winners"] as? Int else {
            throw HarnessError("the draw did not publish: \(draw)")
        }
        let suspicious = (draw["bias"] as? [String: Any])?["suspicious"] as? Bool
        log(String(format: "draw published in %.1f s: %d entries, %d winners, bias suspicious: %@", drawSeconds,
                   draw["entry_count"] as? Int ?? -1, winners, suspicious.map { "\($0)" } ?? "?"))

        let checks = try verifyFiles(admin, campaign: id, winners: winners, entries: registered)
        let persisted = try winnersInSQLite(server, campaign: id, winners: winners, registrations: registered)
        let receipts = try checkReceipts(admin, server: server, campaign: id)
        let allChecks = checks + persisted + receipts + [
            Check(name: "every registration answered 201", passed: registered == registrations, detail: "\(registered) of \(registrations)"),
            Check(name: "every place drawn", passed: winners == min(places, registered), detail: "\(winners) of \(places)"),
            Check(name: "the bias report finds nothing suspicious", passed: suspicious == false,
                  detail: "chi-square \((draw["bias"] as? [String: Any])?["chi_square"] ?? "?")"),
        ]
        for check in allChecks { log("\(check.passed ? "PASS" : "FAIL") \(check.name): \(check.detail)") }
        passed = allChecks.allSatisfy(\.passed)
        if !passed { throw ExitCode(1) }
    }

    private func makeCampaign(_ admin: BlockingClient, opens: Date, closes: Date) throws -> String {
        let id = "lottery-" + String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let created = admin.request("POST", "/v1/admin/campaigns", body: """
            {"id":"\(id)","name":"Lottery \(id)","status":"open","id_scheme":"cn-resident","per_citizen_limit":1,
             "opens_at":"\(format.string(from: opens))","closes_at":"\(format.string(from: closes))",
             "allocation":"lottery","lottery":{"public_value_source":"allot-load: the run's seed"}}
            """)
        guard created.status == 201 else { throw HarnessError("creating the lottery: \(created.status) \(created.body)") }
        let siteCount = max(1, common.slots / 10)
        let sites = (0..<siteCount).map { #"{"id":"site-\#($0)","name":"Site \#($0)","address":"\#($0) Draw Street"}"# }
        guard admin.request("PUT", "/v1/admin/campaigns/\(id)/sites", body: #"{"sites":[\#(sites.joined(separator: ","))]}"#).status == 200
        else { throw HarnessError("sites") }
        let slots = (0..<common.slots).map { index in
            #"{"id":"slot-\#(index)","site_id":"site-\#(index % siteCount)","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":\#(places / common.slots)}"#
        }
        let put = admin.request("PUT", "/v1/admin/campaigns/\(id)/slots", body: #"{"slots":[\#(slots.joined(separator: ","))]}"#)
        guard put.status == 200 else { throw HarnessError("slots: \(put.status) \(put.body)") }
        return id
    }

    /// Downloads the published files and runs `allot draw verify` on them,
    /// then on a copy with one byte of the results changed.
    private func verifyFiles(_ admin: BlockingClient, campaign: String, winners: Int, entries: Int) throws -> [Check] {
        try FileManager.default.createDirectory(atPath: common.reportDir, withIntermediateDirectories: true)
        let json = common.reportDir + "/draw.json", csv = common.reportDir + "/results.csv", tampered = common.reportDir + "/results-tampered.csv"
        let description = admin.request("GET", "/open/v1/campaigns/\(campaign)/draw.json")
        let results = admin.request("GET", "/open/v1/campaigns/\(campaign)/results.csv")
        guard description.status == 200, results.status == 200 else { throw HarnessError("files: \(description.status) \(results.status)") }
        try Data(description.body.utf8).write(to: URL(fileURLWithPath: json))
        var bytes = Array(results.body.utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: csv))
        // One byte in the middle of a row's ticket: a hex digit changed.
        var position = bytes.count / 2
        while position < bytes.count, !((bytes[position] >= 0x30 && bytes[position] <= 0x39) || (bytes[position] >= 0x61 && bytes[position] <= 0x66)) {
            position += 1
        }
        bytes[position] = bytes[position] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        try Data(bytes).write(to: URL(fileURLWithPath: tampered))
        let started = Date()
        let (good, goodOutput) = try runAllot(["draw", "verify", json, csv])
        let verifySeconds = Date().timeIntervalSince(started)
        let (bad, badOutput) = try runAllot(["draw", "verify", json, tampered])
        log(String(format: "draw verify: exit %d in %.1f s (%@); on the changed copy: exit %d (%@)", good, verifySeconds,
                   goodOutput.split(separator: "\n").first.map(String.init) ?? "", bad, badOutput.split(separator: "\n").first.map(String.init) ?? ""))
        return [
            Check(name: "draw verify passes on the published files", passed: good == 0, detail: String(format: "%.1f s, %d bytes of results", verifySeconds, results.body.utf8.count)),
            Check(name: "draw verify fails when one byte of the results changes", passed: bad != 0, detail: "byte \(position)"),
        ]
    }

    /// Entrants' receipts, a sample of them fetched as citizens would and
    /// each checked against the published files (in process, as `allot
    /// draw verify-receipt` does): the proof leads to the root, the ticket,
    /// rank and outcome are the ones in results.csv.
    private func checkReceipts(_ admin: BlockingClient, server: ServerUnderTest, campaign: String, sample: Int = 1_000) throws -> [Check] {
        guard let path = server.databasePath else { return [] }
        let ids = try SQLiteDatabase(path: path).statement(
            "SELECT registration_id FROM draw_entries WHERE campaign_id = ? ORDER BY random() LIMIT ?")
            .rows([.text(campaign), .integer(Int64(sample))]) { $0.text(0) }
        let description = try DrawDescription(json: Array(try Data(contentsOf: URL(fileURLWithPath: common.reportDir + "/draw.json"))))
        let results = try ResultsFile.read(Array(try Data(contentsOf: URL(fileURLWithPath: common.reportDir + "/results.csv"))))
        var failures: [String] = []
        var proofSteps = 0
        let started = Date()
        for id in ids {
            let answer = admin.request("GET", "/v1/registrations/\(id)/receipt")
            guard answer.status == 200 else { failures.append("\(id): \(answer.status)"); continue }
            do {
                let receipt = try DrawReceipt(json: Array(answer.body.utf8))
                proofSteps = max(proofSteps, receipt.proof.count)
                if let wrong = receipt.verify(description: description, results: results) { failures.append("\(id): \(wrong)") }
            } catch {
                failures.append("\(id): \(error)")
            }
        }
        let seconds = Date().timeIntervalSince(started)
        return [Check(name: "entrants' receipts hold against the published files", passed: !ids.isEmpty && failures.isEmpty,
                      detail: String(format: "%d receipts in %.2f s, one at a time (%.0f/s), proofs of up to %d steps; %@", ids.count,
                                     seconds, Double(ids.count) / seconds, proofSteps, failures.first ?? "none failed"))]
    }

    private func runAllot(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: common.allot)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Every winner's reservation in SQLite (the persister writes them from
    /// the stream), and every registration.
    private func winnersInSQLite(_ server: ServerUnderTest, campaign: String, winners: Int, registrations: Int) throws -> [Check] {
        guard let path = server.databasePath else { return [Check(name: "SQLite checks", passed: true, detail: "skipped: no --db")] }
        let database = try SQLiteDatabase(path: path)
        let started = Date()
        var persisted = 0
        while Date().timeIntervalSince(started) < deadlineSeconds {
            persisted = Int(try database.statement("SELECT COUNT(*) FROM reservations WHERE campaign_id = ? AND status = 'confirmed'")
                .rows([.text(campaign)]) { $0.int(0) }.first ?? 0)
            if persisted >= winners { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        let missing = try database.statement("""
            SELECT COUNT(*) FROM draw_entries d LEFT JOIN reservations r ON r.id = d.reservation_id
            WHERE d.campaign_id = ? AND d.reservation_id IS NOT NULL AND r.id IS NULL
            """).rows([.text(campaign)]) { $0.int(0) }.first ?? -1
        let stored = try database.statement("SELECT COUNT(*) FROM registrations WHERE campaign_id = ?").rows([.text(campaign)]) { $0.int(0) }.first ?? 0
        return [
            Check(name: "every winner's reservation in SQLite", passed: persisted == winners && missing == 0,
                  detail: String(format: "%d of %d, %d missing, after %.1f s", persisted, winners, missing, Date().timeIntervalSince(started))),
            Check(name: "every registration in SQLite", passed: stored == registrations, detail: "\(stored) of \(registrations)"),
        ]
    }
}

/// Open loop: registration i is due at start + i × window / N, whether or
/// not the server keeps up (latency is from then). Each thread sends every
/// `threads`-th citizen; each names a slot and then any time at a site.
final class RegistrationWorkload: Workload {
    private let path: String
    private let slots: Int
    private let sites: Int
    private let registrations: Int
    private let windowMicros: Int64
    private let thread: Int
    private let threads: Int
    private let startMicros: Int64
    private var random: SeededRandom
    private var nextCitizen: Int
    private(set) var created = 0
    private(set) var refused: [String: Int] = [:]

    init(campaign: String, slots: Int, sites: Int, registrations: Int, windowMicros: Int64, thread: Int, threads: Int,
         startMicros: Int64, seed: UInt64) {
        path = "/v1/campaigns/\(campaign)/registrations"
        self.slots = slots
        self.sites = sites
        self.registrations = registrations
        self.windowMicros = windowMicros
        self.thread = thread
        self.threads = threads
        self.startMicros = startMicros
        random = SeededRandom(seed: seed &+ UInt64(thread) &* 7919)
        nextCitizen = thread
    }

    var isFinished: Bool { nextCitizen >= registrations }

    func next(nowMicros: Int64) -> PlannedRequest? {
        guard nextCitizen < registrations else { return nil }
        let intended = startMicros + Int64(Double(nextCitizen) * Double(windowMicros) / Double(registrations))
        guard intended <= nowMicros else { return nil }
        let citizen = nextCitizen
        nextCitizen += threads
        var body: [UInt8] = []
        body.reserveCapacity(96)
        body.append(contentsOf: #"{"citizen_id":""#.utf8)
        CitizenIDs.append(citizen, to: &body)
        body.append(contentsOf: #"","preferences":["slot-"#.utf8)
        body.append(contentsOf: String(Int(random.next() % UInt64(slots))).utf8)
        body.append(contentsOf: #"","site:site-"#.utf8)
        body.append(contentsOf: String(Int(random.next() % UInt64(sites))).utf8)
        body.append(contentsOf: #""]}"#.utf8)
        return PlannedRequest(path: path, body: body, intendedMicros: intended, tag: citizen)
    }

    func completed(_ request: PlannedRequest, _ answer: Answer, nowMicros: Int64) {
        if answer.status == 201 { created += 1 } else { refused[answer.label, default: 0] += 1 }
    }
}
