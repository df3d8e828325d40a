import ArgumentParser
import EventHTTP
import EventLoops
import Foundation
import Glibc
import Logging
import RedisClient
import SQLiteStore
import Synchronization

/// Faults injected during a surge, from a seeded schedule.
enum FaultKind: String, CaseIterable, Codable {
    case killServer = "kill-allot"
    case killRedis = "kill-redis"
    case freezeRedis = "freeze-redis"
    case functionFlush = "function-flush"
    case lockSQLite = "lock-sqlite"
    case diskFull = "disk-full"
}

struct ScheduledFault: Codable {
    let kind: FaultKind
    /// Seconds after the load started.
    let atSeconds: Double
    /// How long the fault lasts (freeze, lock, disk full), seconds.
    let holdSeconds: Double
}

/// The same seed gives the same faults at the same times.
enum FaultSchedule {
    /// `count` faults: the short schedule (`count` = number of kinds) has
    /// each kind once in a seeded order; a longer one draws kinds at random.
    static func make(seed: UInt64, count: Int, spacingSeconds: Double, warmupSeconds: Double,
                     kinds: [FaultKind]) -> [ScheduledFault] {
        var random = SeededRandom(seed: seed)
        var order: [FaultKind] = []
        while order.count < count {
            order += count - order.count >= kinds.count ? kinds.shuffled(using: &random)
                : (0..<(count - order.count)).map { _ in kinds[Int(random.next() % UInt64(kinds.count))] }
        }
        return order.enumerated().map { index, kind in
            let jitter = random.unit() * spacingSeconds * 0.2
            return ScheduledFault(kind: kind, atSeconds: warmupSeconds + Double(index) * spacingSeconds + jitter,
                                  holdSeconds: 2 + random.unit() * 2)
        }
    }
}

struct Faults: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A surge with faults injected from a seeded schedule; after each, the acknowledged / persisted / lost counts.",
        discussion: """
            Starts its own redis-server and `allot serve --redis …` (so that each can be killed and restarted \
            on its own), with SQLite in a small tmpfs when it may mount one (for disk-full). The short schedule \
            (the default) has each fault once; --faults N draws N.
            """)

    @Option(help: "The server binary to start.") var allot = ".build/release/allot"
    @Option(help: "Seed of the schedule and the load (printed; the same seed replays the same faults).") var seed: UInt64 = 1
    @Option(help: "Faults to inject (default: each kind once).") var faults: Int?
    @Option(help: "Seconds between faults.") var spacingSeconds = 6.0
    @Option(help: "Reservations per second during the run.") var rate = 600.0
    @Option(help: "Slots in the campaign.") var slots = 40
    @Option(help: "standard (AOF fsync every second) or strict (fsync always).") var durability = "standard"
    @Option(help: "Keep-alive connections of the load.") var connections = 32
    @Option(help: "Directory for report.json and report.html.") var reportDir = "load-report"

    func run() throws {
        prepareProcess()
        guard let appendFsync = ["standard": "everysec", "strict": "always"][durability] else {
            throw ValidationError("--durability is standard or strict")
        }
        let rig = try FaultRig(allotBinary: allot, appendFsync: appendFsync, durability: durability)
        var keepData = true
        defer { rig.shutdown(keepData: keepData) }
        let kinds = FaultKind.allCases.filter { $0 != .diskFull || rig.canFillDisk }
        if !rig.canFillDisk { log("disk-full left out: \(rig.diskFullUnavailableReason)") }
        let warmup = 3.0
        let schedule = FaultSchedule.make(seed: seed, count: faults ?? kinds.count, spacingSeconds: spacingSeconds,
                                          warmupSeconds: warmup, kinds: kinds)
        let loadSeconds = warmup + Double(schedule.count) * spacingSeconds + 3
        log("allot-load faults: seed \(seed), \(schedule.count) faults, \(durability) durability, \(Int(rate))/s for about \(Int(loadSeconds)) s")
        for fault in schedule {
            log(String(format: "  at %6.1f s  %@ (hold %.1f s)", fault.atSeconds, fault.kind.rawValue, fault.holdSeconds))
        }

        let client = BlockingClient(host: "127.0.0.1", port: rig.port, token: rig.adminToken)
        // Enough places for about half the attempts: popular slots fill
        // while faults happen, so capacity is tested as well as durability.
        let capacity = max(1, Int(rate * loadSeconds / 2) / slots)
        let plan = try CampaignSetup.create(client, slots: slots, capacity: capacity, limit: 1, rateLimits: nil)
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let start = monotonicMicros()
        let recorder = Recorder(startMicros: start)
        let ledger = Ledger()
        let injector = FaultInjector(rig: rig, plan: plan, ledger: ledger, start: start, probeCitizenBase: 50_000_000)
        let loadDone = StopFlag()
        let injectorThread = Thread {
            injector.run(schedule)
            loadDone.raise()
        }
        injectorThread.start()
        let driver = Driver(host: "127.0.0.1", port: rig.port, recorder: recorder, deadlineMicros: .max)
        let workloads: [Workload] = [
            StoppableWorkload(OpenLoopWorkload(plan: plan, ledger: ledger, ratePerSecond: rate, thread: 0, threads: 1,
                                               startMicros: start, durationSeconds: 24 * 3600, readFraction: 0,
                                               citizenOffset: 0, seed: seed)) { loadDone.isRaised },
        ]
        let cpuBefore = ProcessCPU.micros()
        driver.run(workloads: workloads, connectionsPerThread: connections)
        let harnessCPU = ProcessCPU.micros() - cpuBefore
        let elapsed = Double(monotonicMicros() - start) / 1_000_000
        log("load done in \(String(format: "%.1f", elapsed)) s; checking invariants…")

        let snapshot = recorder.snapshot()
        let outcomes = snapshot.byOutcome.mapValues(\.totalCount)
        let unanswered = Int(outcomes.filter { $0.key.hasPrefix("503") || $0.key.hasPrefix("0 ") }.values.reduce(0, +))
            + injector.unansweredProbes
        var verification = Verifier(client: client, plan: plan, ledger: ledger, databasePath: rig.databasePath,
                                    dataDirectory: rig.directory, citizens: 50_000_000 + 1_000, expectFull: false)
        verification.unansweredAttempts = unanswered
        let verified = verification.run()
        let latency = RunReport.latencies(byOutcome: snapshot.byOutcome, all: snapshot.all)
        var report = RunReport(
            scenario: "faults", startedAt: startedAt, machine: LoadRun.machine,
            parameters: ["seed": "\(seed)", "faults": "\(schedule.count)", "spacing_seconds": "\(spacingSeconds)",
                         "rate": "\(rate)", "slots": "\(slots)", "capacity_per_slot": "\(capacity)", "durability": durability,
                         "schedule": schedule.map { String(format: "%@@%.1fs", $0.kind.rawValue, $0.atSeconds) }.joined(separator: " ")],
            durationSeconds: elapsed, requests: snapshot.all.totalCount,
            throughputPerSecond: Double(snapshot.all.totalCount) / elapsed, outcomes: outcomes, latency: latency,
            seconds: RunReport.rows(snapshot.seconds), persistLag: nil, catchUpMillis: verified.catchUpMillis,
            counters: ledger.counters, checks: injector.checks + verified.checks, targets: [])
        report.harnessCPUMicrosPerRequest = Double(harnessCPU) / Double(max(1, snapshot.all.totalCount))
        try report.write(to: reportDir)
        keepData = !report.passed
        print(report.summary)
        print("\nreports: \(reportDir)/report.json, \(reportDir)/report.html")
        if !report.passed { throw ExitCode(1) }
    }
}

final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    func raise() { raised.store(true, ordering: .relaxed) }
    var isRaised: Bool { raised.load(ordering: .relaxed) }
}

/// A workload that also ends when `stop` says so.
final class StoppableWorkload: Workload {
    private let inner: Workload
    private let stop: () -> Bool

    init(_ inner: Workload, stop: @escaping () -> Bool) {
        self.inner = inner
        self.stop = stop
    }

    func next(nowMicros: Int64) -> PlannedRequest? { stop() ? nil : inner.next(nowMicros: nowMicros) }
    func completed(_ request: PlannedRequest, _ answer: Answer, nowMicros: Int64) { inner.completed(request, answer, nowMicros: nowMicros) }
    var isFinished: Bool { stop() || inner.isFinished }
}

/// Runs the schedule against the rig; after each fault, waits for service
/// to come back and counts what was acknowledged before it, and what of
/// that SQLite holds.
final class FaultInjector: @unchecked Sendable {
    private let rig: FaultRig
    private let plan: CampaignPlan
    private let ledger: Ledger
    private let start: Int64
    private var nextProbeCitizen: Int
    private(set) var checks: [Check] = []
    private(set) var unansweredProbes = 0

    init(rig: FaultRig, plan: CampaignPlan, ledger: Ledger, start: Int64, probeCitizenBase: Int) {
        self.rig = rig
        self.plan = plan
        self.ledger = ledger
        self.start = start
        nextProbeCitizen = probeCitizenBase
    }

    func run(_ schedule: [ScheduledFault]) {
        for (index, fault) in schedule.enumerated() {
            let due = start + Int64(fault.atSeconds * 1_000_000)
            let wait = due - monotonicMicros()
            if wait > 0 { usleep(UInt32(min(wait, 60_000_000))) }
            let injectedAt = monotonicMicros()
            let during = inject(fault)
            let recovered = waitForService()
            let (acked, persisted, lost) = countLosses(ackedBefore: injectedAt)
            let name = "fault \(index + 1)/\(schedule.count) \(fault.kind.rawValue) at \(String(format: "%.1f", Double(injectedAt - start) / 1e6)) s"
            var detail = "acked \(acked), persisted \(persisted), lost \(lost); "
            detail += recovered.map { String(format: "201s again %.2f s after the fault ended", $0) } ?? "service did not come back in 30 s"
            if !during.isEmpty { detail += "; " + during }
            let passed = lost == 0 && recovered != nil && !during.contains("FAILED")
            checks.append(Check(name: name, passed: passed, detail: detail))
            log((passed ? "ok   " : "FAIL ") + name + ": " + detail)
        }
        // Let the load run a little after the last fault.
        usleep(3_000_000)
    }

    /// Injects one fault and undoes it; returns what was seen meanwhile.
    private func inject(_ fault: ScheduledFault) -> String {
        let hold = UInt32(fault.holdSeconds * 1_000_000)
        switch fault.kind {
        case .killServer:
            rig.killServer()
            usleep(300_000)
            return rig.startServer() ? "" : "restart FAILED"
        case .killRedis:
            rig.killRedis()  // its supervisor restarts it from the AOF
            return ""
        case .freezeRedis:
            rig.freezeRedis()
            usleep(1_500_000)  // past the command deadline
            // While Redis is frozen a reservation must be refused, and soon.
            let began = monotonicMicros()
            let answer = probe()
            let seconds = Double(monotonicMicros() - began) / 1e6
            usleep(hold)
            rig.thawRedis()
            let fast = answer.status == 503 && seconds < 2.5
            return String(format: "a reservation during the freeze: %d in %.2f s%@", answer.status, seconds, fast ? "" : " (FAILED: not a fast 503)")
        case .functionFlush:
            return rig.flushFunctions() ? "" : "FUNCTION FLUSH FAILED"
        case .lockSQLite:
            guard let holder = rig.lockSQLite(seconds: fault.holdSeconds) else { return "could not start the lock holder: FAILED" }
            usleep(500_000)
            // The loops never touch SQLite: booking goes on while it is locked.
            let began = monotonicMicros()
            let answer = probe()
            let seconds = Double(monotonicMicros() - began) / 1e6
            holder.wait()
            let fine = answer.status == 201 && seconds < 1
            return String(format: "a reservation while SQLite was locked: %d in %.3f s%@", answer.status, seconds, fine ? "" : " (FAILED)")
        case .diskFull:
            guard rig.fillDisk() else { return "could not fill the disk: FAILED" }
            usleep(hold / 2)
            let answer = probe()
            let ready = rig.readyStatus()
            usleep(hold / 2)
            rig.freeDisk()
            return "a reservation with the disk full: \(answer.status); /readyz \(ready)" + (answer.status == 201 ? "" : " (FAILED)")
        }
    }

    /// Seconds until a new reservation gets its 201 again (nil: not in 30 s).
    private func waitForService() -> Double? {
        let began = monotonicMicros()
        while monotonicMicros() - began < 30_000_000 {
            if probe().status == 201 { return Double(monotonicMicros() - began) / 1e6 }
            usleep(100_000)
        }
        return nil
    }

    /// One reservation by a citizen of the probe range (counted like the load's).
    private func probe() -> (status: Int, body: String) {
        let citizen = nextProbeCitizen
        nextProbeCitizen += 1
        let body = String(decoding: plan.body(citizen: citizen, slot: plan.slots.count - 1 - citizen % plan.slots.count), as: UTF8.self)
        let answer = rig.citizenClient.request("POST", plan.reservePath, body: body)
        if answer.status == 201, let id = Answer.stringField("id", in: Array(answer.body.utf8)) {
            ledger.booked(citizen: citizen, id: id)
        } else if answer.status == 0 || answer.status == 503 {
            unansweredProbes += 1
        }
        return answer
    }

    /// Of the reservations acknowledged before `micros`, how many SQLite
    /// holds once the persister has had up to 20 s to catch up.
    private func countLosses(ackedBefore micros: Int64) -> (acked: Int, persisted: Int, lost: Int) {
        let acked = Set(ledger.ids(ackedBefore: micros))
        var stored = 0
        for _ in 0..<200 {
            stored = rig.storedCount(of: acked)
            if stored == acked.count { break }
            usleep(100_000)
        }
        return (acked.count, stored, acked.count - stored)
    }
}
