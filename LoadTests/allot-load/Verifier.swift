import Foundation
import Histogram
import SQLiteStore

/// Samples the persister's lag from the stats endpoint during a run.
final class LagSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var samples = Recorder.histogram()
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(client: BlockingClient, campaign: String, everyMillis: Int = 250) {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                if let lag = client.json("GET", "/v1/admin/campaigns/\(campaign)/stats")["persist_lag_ms"] as? Int {
                    lock.withLock { _ = samples.record(UInt64(max(0, lag))) }
                }
                Thread.sleep(forTimeInterval: Double(everyMillis) / 1000)
            }
            finished.signal()
        }
        thread.start()
    }

    func stop() -> Histogram<UInt64> {
        lock.withLock { running = false }
        finished.wait()
        return lock.withLock { samples }
    }
}

/// One invariant checked after a run.
struct Check: Codable {
    let name: String
    let passed: Bool
    let detail: String
}

/// DESIGN.md's invariants, checked after the run through the admin API,
/// the SQLite file and the data directory (what of them is reachable).
struct Verifier {
    let client: BlockingClient
    let plan: CampaignPlan
    let ledger: Ledger
    let databasePath: String?
    let dataDirectory: String?
    let citizens: Int
    /// Demand at least supply: every place must end up taken.
    let expectFull: Bool
    /// Attempts that got no answer or a 503 (faults): each may have been
    /// booked without the client hearing of it. Nil: there were none to allow.
    var unansweredAttempts: Int? = nil

    func run() -> (checks: [Check], catchUpMillis: Int?, stats: [String: Any]) {
        var checks: [Check] = []
        let booked = ledger.bookedIDs
        let start = Date()
        var stats: [String: Any] = [:]
        var caughtUp: Int?
        // Nothing lost: wait for the persister to hold every reservation.
        for _ in 0..<1_200 {
            stats = client.json("GET", "/v1/admin/campaigns/\(plan.id)/stats")
            let confirmed = stats["confirmed"] as? Int ?? -1, redeemed = stats["redeemed"] as? Int ?? 0
            let cancelled = stats["cancelled"] as? Int ?? 0
            if let persisted = stats["persisted"] as? Int, persisted >= confirmed + redeemed + cancelled,
               stats["persist_lag_ms"] as? Int == 0 {
                caughtUp = Int(Date().timeIntervalSince(start) * 1000)
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let capacity = stats["capacity"] as? Int ?? -1, confirmed = stats["confirmed"] as? Int ?? -1
        let redeemed = stats["redeemed"] as? Int ?? 0, remaining = stats["remaining"] as? Int ?? -1
        checks.append(Check(name: "no oversell (Redis)", passed: confirmed + redeemed <= capacity && remaining >= 0,
                            detail: "\(confirmed + redeemed) taken of \(capacity), \(remaining) remaining"))
        if let unanswered = unansweredAttempts {
            // A 503 or a cut connection is "not confirmed", not always "not
            // done" (README, Durability): only those may add to the count.
            let unheard = confirmed - booked.count
            checks.append(Check(name: "every 201 counted; no booking without an attempt", passed: unheard >= 0 && unheard <= unanswered,
                                detail: "\(booked.count) answered 201, \(confirmed) confirmed in Redis, "
                                    + "\(unanswered) attempts unanswered or 503"))
        } else {
            checks.append(Check(name: "every 201 counted once", passed: booked.count == confirmed,
                                detail: "\(booked.count) distinct reservations answered 201, \(confirmed) confirmed in Redis"))
        }
        for violation in ledger.violations.prefix(20) {
            checks.append(Check(name: "contract seen by clients", passed: false, detail: violation))
        }
        if ledger.violations.isEmpty {
            checks.append(Check(name: "contract seen by clients", passed: true,
                                detail: "no second booking, every idempotent replay answered alike"))
        }
        if expectFull {
            checks.append(Check(name: "no leak (demand ≥ supply: every place taken)", passed: remaining == 0 && confirmed == capacity,
                                detail: "\(remaining) places left of \(capacity)"))
        }
        checks.append(Check(name: "persister caught up", passed: caughtUp != nil,
                            detail: caughtUp.map { "\($0) ms after the run" } ?? "not within 60 s: \(stats)"))
        if let databasePath { checks += sqliteChecks(databasePath, booked: booked) }
        if let dataDirectory { checks.append(privacyScan(dataDirectory)) }
        return (checks, caughtUp, stats)
    }

    private func sqliteChecks(_ path: String, booked: Set<String>) -> [Check] {
        do {
            let database = try SQLiteDatabase(path: path)
            let stored = try database.statement("SELECT id FROM reservations WHERE campaign_id = ?").rows([.text(plan.id)]) { $0.text(0) }
            let storedSet = Set(stored)
            let missing = booked.subtracting(storedSet)
            let overfull = try database.statement("""
                SELECT s.id, s.capacity, COUNT(r.id) FROM slots s JOIN reservations r
                  ON r.campaign_id = s.campaign_id AND r.slot_id = s.id AND r.status <> 'cancelled'
                WHERE s.campaign_id = ? GROUP BY s.id HAVING COUNT(r.id) > s.capacity
                """).rows([.text(plan.id)]) { "\($0.text(0)): \($0.int(2)) of \($0.int(1))" }
            let doubled = try database.statement("""
                SELECT citizen_key, COUNT(*) FROM reservations WHERE campaign_id = ? AND status <> 'cancelled'
                GROUP BY citizen_key HAVING COUNT(*) > ?
                """).rows([.text(plan.id), .integer(Int64(plan.perCitizenLimit))]) { "\($0.text(0).prefix(8))…: \($0.int(1))" }
            return [
                Check(name: "nothing lost (every 201 in SQLite, once)", passed: missing.isEmpty && stored.count == storedSet.count,
                      detail: missing.isEmpty ? "\(booked.count) of \(booked.count) present"
                          : "\(missing.count) missing, e.g. \(missing.prefix(3).joined(separator: ", "))"),
                Check(name: "no oversell (SQLite)", passed: overfull.isEmpty,
                      detail: overfull.isEmpty ? "every slot within its capacity" : overfull.prefix(5).joined(separator: "; ")),
                Check(name: "no citizen over the limit (SQLite)", passed: doubled.isEmpty,
                      detail: doubled.isEmpty ? "none above \(plan.perCitizenLimit)" : doubled.prefix(5).joined(separator: "; ")),
            ]
        } catch {
            return [Check(name: "SQLite readable", passed: false, detail: "\(error)")]
        }
    }

    /// Privacy: no raw citizen id of this run in any file under the data
    /// directory (SQLite and its WAL, Redis's AOF and RDB, logs).
    private func privacyScan(_ directory: String) -> Check {
        var scanned = 0, bytes = 0
        var found: [String] = []
        let files = Self.files(under: directory)
        // A scan that missed the database would pass for the wrong reason.
        if let databasePath, databasePath.hasPrefix(directory + "/"),
           !files.contains(String(databasePath.dropFirst(directory.count + 1))) {
            found.append("the SQLite file \(databasePath) was not among the files scanned")
        }
        for relative in files {
            guard let data = FileManager.default.contents(atPath: directory + "/" + relative) else { continue }
            scanned += 1
            bytes += data.count
            if let index = Self.firstCitizenID(in: data, citizens: citizens) {
                found.append("\(relative) holds citizen \(index)'s id")
            }
        }
        return Check(name: "privacy (no raw citizen id stored)", passed: found.isEmpty,
                     detail: found.isEmpty ? "\(scanned) files, \(bytes / 1_048_576) MiB scanned" : found.joined(separator: "; "))
    }

    /// Regular files below `directory`, as paths relative to it. Walked by
    /// hand: Foundation's enumerator does not enter other filesystems (the
    /// fault run's SQLite lives in a tmpfs mounted inside the directory).
    static func files(under directory: String) -> [String] {
        var files: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let path = relative.isEmpty ? directory : directory + "/" + relative
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                let child = relative.isEmpty ? name : relative + "/" + name
                var status = stat()
                guard lstat(directory + "/" + child, &status) == 0 else { continue }
                switch status.st_mode & S_IFMT {
                case S_IFDIR: pending.append(child)
                case S_IFREG: files.append(child)
                default: break
                }
            }
        }
        return files.sorted()
    }

    /// The first run of 17 digits and a check character that decodes to
    /// one of this run's citizens (upper or lower case x).
    static func firstCitizenID(in data: Data, citizens: Int) -> Int? {
        data.withUnsafeBytes { raw -> Int? in
            let bytes = raw.bindMemory(to: UInt8.self)
            var digits = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= 0x30 && byte <= 0x39 {
                    digits += 1
                } else if digits == 17 && (byte == UInt8(ascii: "X") || byte == UInt8(ascii: "x")) {
                    digits = 18
                } else {
                    digits = 0
                }
                if digits >= 18 {
                    var candidate = Array(bytes[(index - 17)...index])
                    if candidate[17] == UInt8(ascii: "x") { candidate[17] = UInt8(ascii: "X") }
                    if let citizen = CitizenIDs.index(of: candidate), citizen < citizens { return citizen }
                    if byte > 0x39 { digits = 0 }
                }
                index += 1
            }
            return nil
        }
    }
}

extension NSLock {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
