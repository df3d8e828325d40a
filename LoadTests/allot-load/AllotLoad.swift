import ArgumentParser
import EventHTTP
import EventLoops
import Foundation
import Histogram

@main
struct AllotLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allot-load",
        abstract: "Load Allot the way a city does, measure it honestly, and check its invariants afterwards.",
        discussion: "Without --url it starts its own `allot serve` (and so its own redis-server) in a fresh data directory.",
        subcommands: [Surge.self, Steady.self, ReadStorm.self, Faults.self, HoldSQLiteLock.self, Lottery.self, Holds.self])
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Target a running server (http://HOST:PORT) instead of starting one; repeat it for several front nodes (citizens are spread over them, the first sets the campaign up).")
    var url: [String] = []
    @Option(help: "Admin token for --url (env ALLOT_ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "The server's SQLite file, for the SQLite checks (known when the harness starts the server).") var db: String?
    @Option(help: "The server's data directory, for the privacy scan (known when the harness starts the server).") var dataDir: String?
    @Option(help: "The server binary to start.") var allot = ".build/release/allot"
    @Option(help: "Event loops of the server it starts (default: its own default).") var serverThreads: Int?
    @Option(help: "Harness threads (each an event loop).") var threads = 1
    @Option(help: "Keep-alive connections per harness thread.") var connections = 64
    @Option(help: "Slots in the campaign.") var slots = 100
    @Option(help: "Redis Cluster shards the campaign is spread over (its buckets, 1–64).") var buckets = 1
    @Option(help: "Rate limits to set, as the JSON body of PUT …/rate-limits.") var rateLimits: String?
    @Option(help: "Seed of every random choice (printed; the same seed makes the same choices).") var seed: UInt64 = 1
    @Option(help: "Directory for report.json and report.html.") var reportDir = "load-report"
    @Option(help: "Slowloris beside the load: this many connections trickling requests that never end.")
    var slowConnections = 0
    @Option(help: "Local address the slow connections come from (a loopback address other than the real clients').")
    var slowFrom = "127.0.0.2"
    @Flag(help: "Faults are injected from outside during the run (a master killed, a node killed): a 503 or a cut connection may have booked, so the count check allows them, and 5xx are not a failed target.")
    var faultsFromOutside = false
}

struct Surge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N citizens arrive (most in the first seconds) and book until booked or every slot is full.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Citizens arriving.") var citizens = 100_000
    @Option(help: "Places in the campaign (spread evenly over the slots).") var places = 10_000
    @Option(help: "Seconds over which citizens arrive.") var arrivalSeconds = 10.0
    @Option(help: "Arrival profile: front (most in the first quarter) or uniform.") var profile = "front"
    @Option(help: "Zipf exponent of slot popularity.") var zipf = 1.0
    @Option(help: "Fraction of citizens who send their booking again with the same Idempotency-Key.") var replayFraction = 0.02
    @Option(help: "Fraction of booked citizens who try to book a second place.") var duplicateFraction = 0.01
    @Option(help: "Give up after this many seconds.") var deadlineSeconds = 900.0

    func run() throws {
        guard places % common.slots == 0 else { throw ValidationError("--places must be a multiple of --slots") }
        let parameters = ["citizens": "\(citizens)", "places": "\(places)", "arrival_seconds": "\(arrivalSeconds)",
                          "profile": profile, "zipf": "\(zipf)", "replay_fraction": "\(replayFraction)",
                          "duplicate_fraction": "\(duplicateFraction)"]
        try LoadRun(common: common, scenario: "surge", parameters: parameters, capacityPerSlot: places / common.slots,
                    citizens: citizens, expectFull: citizens >= places, deadlineSeconds: deadlineSeconds) { plan, ledger, start, threads in
            (0..<threads).map { thread in
                SurgeWorkload(settings: .init(plan: plan, citizens: citizens, arrivalSeconds: arrivalSeconds,
                                              frontLoaded: profile != "uniform", zipfExponent: zipf, replayFraction: replayFraction,
                                              duplicateFraction: duplicateFraction, seed: common.seed),
                              ledger: ledger, thread: thread, threads: threads, startMicros: start)
            }
        } targets: { report in
            let fiveHundreds = report.outcomes.filter { $0.key.hasPrefix("5") || $0.key.hasPrefix("0 ") }.values.reduce(0, +)
            var targets = [Check(name: "zero 5xx or transport errors", passed: fiveHundreds == 0, detail: "\(fiveHundreds)")]
            if let lag = report.persistLag {
                targets.append(Check(name: "persistence lag p99 < 250 ms", passed: lag.p99Millis < 250,
                                     detail: String(format: "p99 %.0f ms, max %.0f ms", lag.p99Millis, lag.maxMillis)))
            }
            return targets
        }.execute()
    }
}

struct Steady: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open loop: reservations at a fixed rate, latency from each request's intended send time.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Reservations per second.") var rate = 5_000.0
    @Option(help: "Seconds.") var duration = 20.0
    @Option(help: "p99 the run must hold (milliseconds), reported as a target.") var p99TargetMillis = 10.0
    @Option(help: "Places per slot (default: enough that none fills). Fewer keep a spread campaign's moves going all run.")
    var placesPerSlot: Int?

    func validate() throws {
        if let placesPerSlot, placesPerSlot < 1 { throw ValidationError("--places-per-slot is at least 1") }
    }

    func run() throws {
        try openLoop(common: common, scenario: "steady", rate: rate, duration: duration, readFraction: 0,
                     p99TargetMillis: p99TargetMillis, placesPerSlot: placesPerSlot)
    }
}

struct ReadStorm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-storm", abstract: "Open loop: availability polling (GET …/slots) mixed with reservations.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Requests per second, reads and reservations together.") var rate = 20_000.0
    @Option(help: "Seconds.") var duration = 20.0
    @Option(help: "Fraction of requests that are reads.") var readFraction = 0.9
    @Option(help: "p99 the run must hold (milliseconds), reported as a target.") var p99TargetMillis = 10.0

    func run() throws {
        try openLoop(common: common, scenario: "read-storm", rate: rate, duration: duration, readFraction: readFraction,
                     p99TargetMillis: p99TargetMillis)
    }
}

private func openLoop(common: CommonOptions, scenario: String, rate: Double, duration: Double, readFraction: Double,
                      p99TargetMillis: Double, placesPerSlot: Int? = nil) throws {
    // By default enough places in every slot that none fills, however
    // popular: the latency of the booking path itself.
    let capacity = placesPerSlot ?? Int(rate * duration) + 1
    var parameters = ["rate": "\(rate)", "duration_seconds": "\(duration)", "read_fraction": "\(readFraction)"]
    if let placesPerSlot { parameters["places_per_slot"] = "\(placesPerSlot)" }
    try LoadRun(common: common, scenario: scenario, parameters: parameters, capacityPerSlot: capacity,
                citizens: Int(rate * duration) + common.threads, expectFull: false, deadlineSeconds: duration + 60) {
        plan, ledger, start, threads in
        (0..<threads).map { thread in
            OpenLoopWorkload(plan: plan, ledger: ledger, ratePerSecond: rate, thread: thread, threads: threads,
                             startMicros: start, durationSeconds: duration, readFraction: readFraction, citizenOffset: 0,
                             seed: common.seed)
        }
    } targets: { report in
        let all = report.latency["all"]
        return [
            Check(name: "p99 < \(p99TargetMillis) ms at \(Int(rate))/s", passed: (all?.p99Millis ?? .infinity) < p99TargetMillis,
                  detail: String(format: "p99 %.2f ms, p99.9 %.2f ms", all?.p99Millis ?? 0, all?.p999Millis ?? 0)),
            Check(name: "achieved rate ≥ 99% of \(Int(rate))/s", passed: report.throughputPerSecond >= 0.99 * rate,
                  detail: "\(Int(report.throughputPerSecond))/s"),
        ]
    }.execute()
}

/// One run, whatever the scenario: server, campaign, load, checks, report.
struct LoadRun {
    let common: CommonOptions
    let scenario: String
    let parameters: [String: String]
    let capacityPerSlot: Int
    let citizens: Int
    let expectFull: Bool
    let deadlineSeconds: Double
    let makeWorkloads: (CampaignPlan, Ledger, Int64, Int) -> [Workload]
    let targets: (RunReport) -> [Check]

    func execute() throws {
        prepareProcess()
        let server = try ServerUnderTest(urls: common.url, adminToken: common.adminToken, databasePath: common.db,
                                         dataDirectory: common.dataDir, allotBinary: common.allot, serverThreads: common.serverThreads)
        var keepData = true
        defer { server.stop(keepData: keepData || common.dataDir != nil) }
        let client = BlockingClient(host: server.host, port: server.port, token: server.adminToken)
        let plan = try CampaignSetup.create(client, slots: common.slots, capacity: capacityPerSlot, limit: 1, buckets: common.buckets,
                                            rateLimits: common.rateLimits)
        log("allot-load \(scenario): campaign \(plan.id), \(plan.places) places in \(plan.slots.count) slots, "
            + "seed \(common.seed), \(common.threads)×\(common.connections) connections to " + server.endpoints.map { "\($0.host):\($0.port)" }.joined(separator: ", "))
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let start = monotonicMicros()
        let recorder = Recorder(startMicros: start)
        let ledger = Ledger()
        let lag = LagSampler(client: client, campaign: plan.id)
        let progress = Progress(recorder: recorder, start: start)
        let attacker = common.slowConnections > 0
            ? SlowAttacker(connections: common.slowConnections, sourceAddress: common.slowFrom, host: server.host, port: server.port)
            : nil
        attacker?.start()
        let driver = Driver(endpoints: server.endpoints, recorder: recorder,
                            deadlineMicros: start + Int64(deadlineSeconds * 1_000_000))
        let cpuBefore = ProcessCPU.micros()
        driver.run(workloads: makeWorkloads(plan, ledger, start, common.threads), connectionsPerThread: common.connections)
        let harnessCPU = ProcessCPU.micros() - cpuBefore
        let elapsed = Double(monotonicMicros() - start) / 1_000_000
        let attack = attacker?.stop()
        progress.stop()
        let lagSamples = lag.stop()
        log("load done in \(String(format: "%.1f", elapsed)) s; checking invariants…")
        if server.endpoints.count > 1 {
            log("requests per node: " + zip(server.endpoints, driver.sentPerEndpoint)
                .map { "\($0.host):\($0.port) \($1)" }.joined(separator: ", "))
        }
        let snapshot = recorder.snapshot()
        var verifier = Verifier(client: client, plan: plan, ledger: ledger, databasePath: server.databasePath,
                                dataDirectory: server.dataDirectory, citizens: citizens, expectFull: expectFull)
        if common.faultsFromOutside {
            verifier.unansweredAttempts = Int(snapshot.byOutcome.filter { $0.key.hasPrefix("503") || $0.key.hasPrefix("0 ") }
                .values.map(\.totalCount).reduce(0, +))
        }
        let verification = verifier.run()
        let latency = RunReport.latencies(byOutcome: snapshot.byOutcome, all: snapshot.all)
        var report = RunReport(
            scenario: scenario, startedAt: startedAt, machine: Self.machine, parameters: parameters.merging([
                "slots": "\(common.slots)", "capacity_per_slot": "\(capacityPerSlot)", "threads": "\(common.threads)",
                "connections_per_thread": "\(common.connections)", "seed": "\(common.seed)",
                "server": server.startedHere ? "started by the harness" : common.url.joined(separator: ","),
                "rate_limits": common.rateLimits ?? "none",
                "slow_connections": "\(common.slowConnections) from \(common.slowFrom)",
            ]) { $1 },
            durationSeconds: elapsed, requests: snapshot.all.totalCount,
            throughputPerSecond: Double(snapshot.all.totalCount) / elapsed,
            outcomes: snapshot.byOutcome.mapValues(\.totalCount), latency: latency, seconds: RunReport.rows(snapshot.seconds),
            persistLag: lagSamples.totalCount > 0 ? RunReport.latency(lagSamples, unitMicros: false) : nil,
            catchUpMillis: verification.catchUpMillis, counters: ledger.counters.merging(attack?.asCounters ?? [:]) { $1 }, checks: verification.checks, targets: [])
        report.targets = common.faultsFromOutside ? [] : targets(report)
        report.harnessCPUMicrosPerRequest = Double(harnessCPU) / Double(max(1, snapshot.all.totalCount))
        try report.write(to: common.reportDir)
        keepData = !report.passed
        print(report.summary)
        print("\nreports: \(common.reportDir)/report.json, \(common.reportDir)/report.html")
        if !report.passed { throw ExitCode(1) }
    }

    static var machine: String {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(machine), harness and server on the same machine"
    }
}

/// The live line: elapsed, last second's rate and p99, outcomes so far.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(recorder: Recorder, start: Int64) {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                Thread.sleep(forTimeInterval: 1)
                let now = monotonicMicros()
                let last = recorder.lastSecond(before: now)
                let outcomes = last.total.sorted { $0.value > $1.value }.prefix(5).map { "\($0.key): \($0.value)" }
                let line = String(format: "%5.0fs  %7d req/s  p99 %7.2f ms  ", Double(now - start) / 1_000_000, last.rate,
                                  Double(last.p99Micros) / 1000) + outcomes.joined(separator: "  ")
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            finished.signal()
        }
        thread.start()
    }

    func stop() {
        lock.withLock { running = false }
        finished.wait()
    }
}

/// Every run: a connection the server dropped (it was killed, it refused)
/// must fail a write, not end the harness with SIGPIPE; and the harness may
/// open as many connections as the machine allows.
func prepareProcess() {
    signal(SIGPIPE, SIG_IGN)
    FileDescriptorLimit.raiseToHard()
}

func log(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
