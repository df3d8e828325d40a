import AllotDomain
import ArgumentParser
import EventLoops
import Foundation
import SQLiteStore

/// Issue 14's hold and waitlist surge: a campaign with holds and a
/// waitlist, citizens arriving faster than places, each holder confirming
/// at once, near the deadline, too late, never, or cancelling; of the
/// refused, half join the waitlist (and, offered a place, act as holders
/// do) and half try again as places come back. Afterwards every place must
/// be confirmed or back on sale, every answer must match what its
/// reservation became in SQLite, and every unconfirmed hold or offer must
/// have ended within a second of its expiry.
struct Holds: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A surge on a campaign with holds and a waitlist: every place ends confirmed or back on sale, expiries within 1 s.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Citizens arriving (each books once, trying again on slot_full).") var citizens = 100_000
    @Option(help: "Places in the campaign (spread evenly over the slots).") var places = 10_000
    @Option(help: "Seconds over which citizens arrive (uniformly).") var arrivalSeconds = 20.0
    @Option(help: "The campaign's hold_seconds.") var holdSeconds = 5
    @Option(help: "Attempts per citizen refused slot_full (one a second).") var attempts = 5
    @Option(help: "Fraction of the citizens refused slot_full who join the waitlist.") var joinFraction = 0.25
    @Option(help: "Seconds between a waiting citizen's looks at their entry.") var lookSeconds = 3.0
    @Option(help: "Give up waiting for holds to end and SQLite to catch up after this many seconds.") var deadlineSeconds = 300.0

    func run() throws {
        guard places % common.slots == 0 else { throw ValidationError("--places must be a multiple of --slots") }
        prepareProcess()
        let server = try ServerUnderTest(urls: common.url, adminToken: common.adminToken, databasePath: common.db,
                                         dataDirectory: common.dataDir, allotBinary: common.allot, serverThreads: common.serverThreads)
        var passed = false
        defer { server.stop(keepData: !passed) }
        let admin = BlockingClient(host: server.host, port: server.port, token: server.adminToken)
        let waitlist = #","waitlist":{"offer_seconds":\#(holdSeconds)}"#
        let plan = try CampaignSetup.create(admin, slots: common.slots, capacity: places / common.slots, limit: 1, buckets: common.buckets,
                                            rateLimits: common.rateLimits, settings: #","hold_seconds":\#(holdSeconds)"# + waitlist)
        log("allot-load holds: campaign \(plan.id), \(plan.places) places in \(plan.slots.count) slots held \(holdSeconds) s; "
            + "\(citizens) citizens over \(arrivalSeconds) s, seed \(common.seed)")
        let start = monotonicMicros()
        let recorder = Recorder(startMicros: start)
        let threads = max(1, common.threads)
        let workloads = (0..<threads).map {
            HoldSurgeWorkload(campaign: plan.id, slots: plan.slots.count, citizens: citizens, arrivalMicros: Int64(arrivalSeconds * 1e6),
                              holdMicros: Int64(holdSeconds) * 1_000_000, attempts: attempts,
                              joinFraction: joinFraction, lookMicros: Int64(lookSeconds * 1e6), thread: $0, threads: threads,
                              startMicros: start, seed: common.seed)
        }
        let progress = Progress(recorder: recorder, start: start)
        let lastAction = arrivalSeconds + Double(attempts + 2 * holdSeconds) + 5
        Driver(endpoints: server.endpoints, recorder: recorder, deadlineMicros: start + Int64(lastAction * 1_000_000))
            .run(workloads: workloads, connectionsPerThread: common.connections)
        progress.stop()
        // Closed: no more offers (the line could pass places on for as long
        // as it is), so every hold left ends within a hold's time.
        let closed = admin.request("PATCH", "/v1/admin/campaigns/\(plan.id)", body: #"{"status":"closed"}"#)
        guard closed.status == 200 else { throw HarnessError("closing the campaign: \(closed.status) \(closed.body)") }
        let elapsed = Double(monotonicMicros() - start) / 1_000_000
        var tally = HoldSurgeWorkload.Tally()
        for workload in workloads { tally.add(workload.tally) }
        let snapshot = recorder.snapshot()
        let outcomes = snapshot.byOutcome.mapValues(\.totalCount).sorted { $0.value > $1.value }
        log(String(format: "load done in %.1f s: %d requests (%.0f/s), p50 %.2f ms, p99 %.2f ms", elapsed, snapshot.all.totalCount,
                   Double(snapshot.all.totalCount) / elapsed, Double(snapshot.all.valueAtPercentile(50)) / 1000,
                   Double(snapshot.all.valueAtPercentile(99)) / 1000))
        log("outcomes: " + outcomes.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        log("holds made \(tally.held.count) (\(tally.offers.count) of them offers to \(tally.joined) who joined the waitlist); "
            + "confirmed \(tally.confirmed.count), late confirms refused \(tally.lateRefused.count), "
            + "cancelled \(tally.cancelled.count), left to expire \(tally.abandoned.count)")

        let checks = try verify(admin, server: server, campaign: plan.id, tally: tally, fiveHundreds: outcomes
            .filter { $0.key.hasPrefix("5") || $0.key.hasPrefix("0 ") }.map { Int($0.value) }.reduce(0, +))
        for check in checks { log("\(check.passed ? "PASS" : "FAIL") \(check.name): \(check.detail)") }
        passed = checks.allSatisfy(\.passed)
        if !passed { throw ExitCode(1) }
    }

    private func verify(_ admin: BlockingClient, server: ServerUnderTest, campaign: String, tally: HoldSurgeWorkload.Tally,
                        fiveHundreds: Int) throws -> [Check] {
        // Holds end on their own: wait for none to be left, and for SQLite.
        let started = Date()
        var stats: [String: Any] = [:]
        while Date().timeIntervalSince(started) < deadlineSeconds {
            stats = admin.json("GET", "/v1/admin/campaigns/\(campaign)/stats")
            let made = ["held", "confirmed", "cancelled", "expired", "redeemed"].map { stats[$0] as? Int ?? 0 }.reduce(0, +)
            if stats["held"] as? Int == 0, stats["persist_lag_ms"] as? Int == 0, stats["persisted"] as? Int == made { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let confirmed = stats["confirmed"] as? Int ?? -1, remaining = stats["remaining"] as? Int ?? -1
        var checks = [
            Check(name: "zero 5xx or transport errors", passed: fiveHundreds == 0, detail: "\(fiveHundreds)"),
            Check(name: "holds confirmed, refused late, cancelled and left to expire", passed: [tally.confirmed, tally.lateRefused,
                                                                                               tally.cancelled, tally.abandoned].allSatisfy { !$0.isEmpty },
                  detail: "\(tally.held.count) holds made"),
            Check(name: "places given back offered to the waitlist", passed: !tally.offers.isEmpty,
                  detail: "\(tally.offers.count) offers to \(tally.joined) in line"),
            Check(name: "every place ends confirmed or back on sale", passed: stats["held"] as? Int == 0 && confirmed + remaining == places,
                  detail: "\(confirmed) confirmed + \(remaining) on sale of \(places); held \(stats["held"] ?? "?")"),
            Check(name: "confirmed places = confirms answered 200", passed: confirmed == tally.confirmed.count,
                  detail: "\(confirmed) and \(tally.confirmed.count)"),
        ]
        guard let path = server.databasePath else { return checks }
        let database = try SQLiteDatabase(path: path)
        var status: [String: String] = [:]
        var delays: [Int64] = []
        try database.statement("SELECT id, status, updated_at - expires_at FROM reservations WHERE campaign_id = ?")
            .forEachRow([.text(campaign)]) { row in
                status[row.text(0)] = row.text(1)
                if row.text(1) == "expired" { delays.append(row.int(2)) }
            }
        func mismatches(_ ids: [String], _ expected: String) -> Int { ids.count { status[$0] != expected } }
        let wrong = mismatches(tally.confirmed, "confirmed") + mismatches(tally.lateRefused, "expired")
            + mismatches(tally.cancelled, "cancelled") + mismatches(tally.abandoned, "expired")
        // Offers made after their citizens stopped looking lapsed unseen.
        let seen = Set(tally.held)
        let unseen = status.filter { !seen.contains($0.key) }
        checks.append(Check(name: "every answer is what its reservation became in SQLite", passed: wrong == 0
                                && tally.held.allSatisfy { status[$0] != nil } && unseen.values.allSatisfy { $0 == "expired" }
                                && !status.values.contains("held"),
                            detail: "\(wrong) mismatched; \(status.count) rows for \(tally.held.count) holds seen and \(unseen.count) "
                                + "offers unseen (all expired)"))
        let overfull = try database.statement("""
            SELECT COUNT(*) FROM (SELECT s.id FROM slots s JOIN reservations r ON r.campaign_id = s.campaign_id AND r.slot_id = s.id
            WHERE s.campaign_id = ? AND r.status IN ('held', 'confirmed', 'redeemed') GROUP BY s.id HAVING COUNT(*) > s.capacity)
            """).rows([.text(campaign)]) { $0.int(0) }.first ?? -1
        checks.append(Check(name: "no slot over capacity in SQLite", passed: overfull == 0, detail: "\(overfull) slots"))
        delays.sort()
        func at(_ fraction: Double) -> Int64 { delays.isEmpty ? 0 : delays[min(delays.count - 1, Int(Double(delays.count) * fraction))] }
        checks.append(Check(name: "every expired hold ended within 1 s of its expiry", passed: !delays.isEmpty && delays.last! <= 1_000,
                            detail: "\(delays.count) expired: p50 \(at(0.5)) ms, p99 \(at(0.99)) ms, max \(delays.last ?? 0) ms after"))
        return checks
    }
}

/// Citizens arrive uniformly; each books a random slot. A holder, by a
/// draw of its own: confirms at once (40 %), within the hold (20 %), in
/// the last tenth of it or just past it (15 %: racing the sweep), cancels
/// (5 %), or does nothing (20 %). A citizen refused slot_full joins a
/// slot's waitlist (`joinFraction` of them) and looks
/// at their entry every `lookMicros` until offered (then acts as a holder)
/// or the run's end; the others try again a second later, `attempts`
/// times in all.
final class HoldSurgeWorkload: Workload {
    struct Tally {
        var held: [String] = []
        var confirmed: [String] = []
        var lateRefused: [String] = []
        var cancelled: [String] = []
        var abandoned: [String] = []
        /// Reservations offered from the waitlist (also in `held`).
        var offers: [String] = []
        var joined = 0

        mutating func add(_ other: Tally) {
            held += other.held; confirmed += other.confirmed; lateRefused += other.lateRefused
            cancelled += other.cancelled; abandoned += other.abandoned; offers += other.offers; joined += other.joined
        }
    }

    private enum Step { case book(attempt: Int), confirm(String), cancel(String), join(slot: Int), look(String) }

    private let reservePath: String
    private let slots: Int
    private let citizens: Int
    private let arrivalMicros: Int64
    private let holdMicros: Int64
    private let attempts: Int
    private let joinFraction: Double
    private let lookMicros: Int64
    private let threads: Int
    /// Waiting citizens stop looking after this (their offers end on their own).
    private let lookUntilMicros: Int64
    private let startMicros: Int64
    private var random: SeededRandom
    private var nextCitizen: Int
    private var due = MinHeap()
    /// What each pending step in `due` is, by its tag.
    private var steps: [Int: (citizen: Int, step: Step)] = [:]
    private var nextTag = 0
    private var inFlight = 0
    private(set) var tally = Tally()

    private let joinPath: String

    init(campaign: String, slots: Int, citizens: Int, arrivalMicros: Int64, holdMicros: Int64, attempts: Int,
         joinFraction: Double, lookMicros: Int64, thread: Int, threads: Int, startMicros: Int64, seed: UInt64) {
        self.joinFraction = joinFraction
        self.lookMicros = lookMicros
        reservePath = "/v1/campaigns/\(campaign)/reservations"
        joinPath = "/v1/campaigns/\(campaign)/waitlist"
        lookUntilMicros = startMicros + arrivalMicros + Int64(attempts) * 1_000_000 + holdMicros
        self.slots = slots
        self.citizens = citizens
        self.arrivalMicros = arrivalMicros
        self.holdMicros = holdMicros
        self.attempts = attempts
        self.threads = threads
        self.startMicros = startMicros
        random = SeededRandom(seed: seed &+ UInt64(thread) &* 104_729)
        nextCitizen = thread
    }

    var isFinished: Bool { nextCitizen >= citizens && due.peek == nil && inFlight == 0 }

    private func schedule(_ step: Step, citizen: Int, at micros: Int64) {
        nextTag += 1
        steps[nextTag] = (citizen, step)
        due.push(at: micros, citizen: nextTag)
    }

    func next(nowMicros: Int64) -> PlannedRequest? {
        // A newly arrived citizen's first attempt joins the steps due.
        while nextCitizen < citizens {
            let arrives = startMicros + Int64(Double(nextCitizen) * Double(arrivalMicros) / Double(citizens))
            guard arrives <= nowMicros else { break }
            schedule(.book(attempt: 1), citizen: nextCitizen, at: arrives)
            nextCitizen += threads
        }
        guard let top = due.peek, top.at <= nowMicros, let (citizen, step) = steps.removeValue(forKey: top.citizen) else { return nil }
        _ = due.pop()
        inFlight += 1
        let tag = top.citizen
        steps[-tag] = (citizen, step)  // in flight, found again by its tag
        switch step {
        case .book:
            let body = Self.body(citizen: citizen, slot: Int(random.next() % UInt64(slots)))
            return PlannedRequest(path: reservePath, body: body, intendedMicros: top.at, tag: tag)
        case .join(let slot):
            return PlannedRequest(path: joinPath, body: Self.body(citizen: citizen, slot: slot), intendedMicros: top.at, tag: tag)
        case .look(let id):
            return PlannedRequest(method: "GET", path: "/v1/waitlist/\(id)", intendedMicros: top.at, tag: tag)
        case .confirm(let id):
            return PlannedRequest(path: "/v1/reservations/\(id)/confirm", intendedMicros: top.at, tag: tag)
        case .cancel(let id):
            return PlannedRequest(method: "DELETE", path: "/v1/reservations/\(id)", intendedMicros: top.at, tag: tag)
        }
    }

    private static func body(citizen: Int, slot: Int) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(80)
        body.append(contentsOf: #"{"citizen_id":""#.utf8)
        CitizenIDs.append(citizen, to: &body)
        body.append(contentsOf: #"","slot_id":"slot-\#(slot)"}"#.utf8)
        return body
    }

    /// A hold the citizen has (made, or offered), acted on by their draw.
    private func holding(_ id: String, citizen: Int, nowMicros: Int64) {
        tally.held.append(id)
        let choice = random.unit(), hold = Double(holdMicros)
        switch choice {
        case ..<0.4: schedule(.confirm(id), citizen: citizen, at: nowMicros)
        case ..<0.6: schedule(.confirm(id), citizen: citizen, at: nowMicros + Int64(random.unit() * 0.85 * hold))
        case ..<0.75: schedule(.confirm(id), citizen: citizen, at: nowMicros + Int64((0.9 + random.unit() * 0.15) * hold))
        case ..<0.8: schedule(.cancel(id), citizen: citizen, at: nowMicros + Int64(random.unit() * 0.5 * hold))
        default: tally.abandoned.append(id)
        }
    }

    func completed(_ request: PlannedRequest, _ answer: Answer, nowMicros: Int64) {
        inFlight -= 1
        guard let (citizen, step) = steps.removeValue(forKey: -request.tag) else { return }
        switch step {
        case .book(let attempt):
            if answer.status == 201, let id = answer.id {
                holding(id, citizen: citizen, nowMicros: nowMicros)
            } else if answer.code == "slot_full", random.unit() < joinFraction {
                schedule(.join(slot: Int(random.next() % UInt64(slots))), citizen: citizen, at: nowMicros)
            } else if answer.code == "slot_full", attempt < attempts {
                schedule(.book(attempt: attempt + 1), citizen: citizen, at: nowMicros + 1_000_000)
            }
        case .join:
            if answer.status == 201, let id = answer.id {
                tally.joined += 1
                schedule(.look(id), citizen: citizen, at: nowMicros + lookMicros)
            } else if answer.code == "places_left" {
                schedule(.book(attempt: attempts), citizen: citizen, at: nowMicros)
            }
        case .look(let id):
            if answer.status == 200, let offered = answer.reservationID {
                tally.offers.append(offered)
                holding(offered, citizen: citizen, nowMicros: nowMicros)
            } else if answer.status == 200 || answer.status >= 500, nowMicros < lookUntilMicros {
                // Still waiting (or passed over, or left: looked at until the end).
                schedule(.look(id), citizen: citizen, at: nowMicros + lookMicros)
            }
        case .confirm(let id):
            if answer.status == 200 { tally.confirmed.append(id) } else if answer.code == "hold_expired" { tally.lateRefused.append(id) }
        case .cancel(let id):
            if answer.status == 200 { tally.cancelled.append(id) }
        }
    }
}
