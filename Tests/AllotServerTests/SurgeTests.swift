import AllotDomain
import Foundation
import SQLiteStore
import Testing

/// The invariants of DESIGN.md under real concurrency: 64 connections at
/// once, thousands of attempts on a few hundred places, duplicates mixed in.
@Suite(.serialized) struct SurgeTests {
    static let connections = 64
    static let attemptsPerConnection = 80
    static let slots = 4
    static let capacity = 75
    static let citizens = 1_500

    /// A valid cn-resident number for citizen `index`; every third attempt of
    /// an `X` number writes it in lower case (the same citizen).
    static func citizenID(_ index: Int, variant: Int) -> String {
        let body = Array(String(format: "110105198001%02d%03d", index % 28 + 1, index / 28).utf8)
        var id = String(decoding: body + [CNResidentID.checkCharacter(body)], as: UTF8.self)
        if variant % 3 == 0 { id = id.lowercased() }
        return id
    }

    struct Outcome: Sendable {
        let status: Int
        let code: String?
        let reservationID: String?
        let slot: String
        let citizen: Int
    }

    @Test func surgeKeepsEveryInvariant() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("surge", scheme: "cn-resident", limit: 1, slots: Self.slots, capacity: Self.capacity)

        let outcomes = Locked<[Outcome]>([])
        let port = stack.port
        concurrently(Self.connections) { connection in
            let client = HTTPClient(port: port)
            var mine: [Outcome] = []
            for attempt in 0..<Self.attemptsPerConnection {
                let n = UInt64(connection * Self.attemptsPerConnection + attempt)
                let mixed = (n &+ 1) &* 0x9E37_79B9_7F4A_7C15
                let citizen = Int((mixed >> 20) % UInt64(Self.citizens))
                let slot = "s\((mixed >> 50) % UInt64(Self.slots))"
                let response = try? client.request("POST", "/v1/campaigns/surge/reservations",
                                                   body: #"{"citizen_id":"\#(Self.citizenID(citizen, variant: Int(n)))","slot_id":"\#(slot)"}"#)
                mine.append(Outcome(status: response?.status ?? -1, code: response?.code,
                                    reservationID: response?.json["id"] as? String, slot: slot, citizen: citizen))
            }
            outcomes.withLock { $0 += mine }
        }
        let all = outcomes.withLock { $0 }
        #expect(all.count == Self.connections * Self.attemptsPerConnection)

        // Only the contract's answers: no 5xx, no transport failure.
        let unexpected = all.filter { !($0.status == 201 || ($0.status == 409 && ["slot_full", "citizen_limit_reached"].contains($0.code))) }
        #expect(unexpected.isEmpty, "unexpected answers: \(unexpected.prefix(5))")

        let booked = all.filter { $0.status == 201 }
        // No oversell, no leak: every place taken exactly once.
        #expect(booked.count == Self.slots * Self.capacity)
        for slot in 0..<Self.slots {
            #expect(booked.filter { $0.slot == "s\(slot)" }.count == Self.capacity, "slot s\(slot)")
        }
        // No double share, whatever case the check character was written in.
        let perCitizen = Dictionary(grouping: booked, by: \.citizen)
        #expect(perCitizen.values.allSatisfy { $0.count == 1 })
        #expect(Set(booked.compactMap(\.reservationID)).count == booked.count)

        let stats = try stack.stats("surge")
        #expect(stats["remaining"] as? Int == 0)
        #expect(stats["confirmed"] as? Int == booked.count)
        // Every attempt is counted: refusals made on the loops (a sold-out
        // slot) reach the stats at the loops' next flush (snapshotRefreshMillis).
        #expect(try waitUntil { try stack.stats("surge")["attempts"] as? Int == all.count })

        // Nothing lost: every 201 is in SQLite once the persister caught up.
        _ = try stack.waitForPersistence("surge", expected: booked.count)
        let database = try stack.sqlite()
        let stored = Set(try database.statement("SELECT id FROM reservations WHERE campaign_id = 'surge'").rows { $0.text(0) })
        #expect(stored == Set(booked.compactMap(\.reservationID)))
        let overfull = try database.statement("""
            SELECT slot_id FROM reservations WHERE status <> 'cancelled' GROUP BY slot_id HAVING COUNT(*) > ?
            """).rows([.integer(Int64(Self.capacity))]) { $0.text(0) }
        #expect(overfull.isEmpty)
        let doubled = try database.statement("""
            SELECT citizen_key FROM reservations WHERE status <> 'cancelled' GROUP BY citizen_key HAVING COUNT(*) > 1
            """).rows { $0.text(0) }
        #expect(doubled.isEmpty)

        // Privacy: no raw id of this run in the SQLite files or Redis's AOF.
        let rawIDs = Set(booked.map { Self.citizenID($0.citizen, variant: 1) })
        let files = try storedFiles(in: stack.directory)
        for (path, bytes) in files {
            let text = String(decoding: bytes, as: UTF8.self).uppercased()
            let leaked = rawIDs.filter { text.contains($0) }
            #expect(leaked.isEmpty, "raw citizen ids found in \(path)")
        }
        let logged = stack.logLines.withLock { $0 }.joined(separator: "\n").uppercased()
        #expect(!logged.isEmpty)
        #expect(rawIDs.filter { logged.contains($0) }.isEmpty, "raw citizen ids found in the log")
        #expect(files.contains { $0.0.hasSuffix("allot.db") })
        #expect(files.contains { $0.0.contains("appendonly") })
    }

    private func storedFiles(in directory: String) throws -> [(String, [UInt8])] {
        let enumerator = FileManager.default.enumerator(atPath: directory)
        var result: [(String, [UInt8])] = []
        while let relative = enumerator?.nextObject() as? String {
            let path = directory + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            result.append((path, Array(data)))
        }
        return result
    }
}
