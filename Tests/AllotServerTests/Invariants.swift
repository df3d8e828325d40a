import AllotServer
import Foundation
import RedisClient
import SQLiteStore

/// DESIGN.md invariants 1 and 2, read straight from Redis and from SQLite:
/// returns every violation found (empty when they hold).
func invariantViolations(_ stack: LiveStack, campaign: String, limit: Int) throws -> [String] {
    var violations: [String] = []
    let tag = "{c:\(campaign)}"
    func hash(_ key: String) throws -> [String: String] {
        let items = try stack.keyspace.command(["HGETALL", key], slot: ClusterSlot.of(tag)).elements?.compactMap(\.text) ?? []
        return Dictionary(uniqueKeysWithValues: stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], items[$0 + 1]) })
    }
    let capacity = try hash(tag + ":cap"), remaining = try hash(tag + ":rem"), held = try hash(tag + ":held")
    var takenBySlot: [String: Int] = [:], activeByCitizen: [String: Int] = [:]
    for record in try hash(tag + ":recs").values {
        let fields = record.split(separator: "|").map(String.init)
        guard fields[0] != "cancelled" else { continue }
        takenBySlot[fields[1], default: 0] += 1
        activeByCitizen[fields[4], default: 0] += 1
    }
    for (slot, capacityText) in capacity {
        let cap = Int(capacityText) ?? -1, left = Int(remaining[slot] ?? "") ?? -1, taken = takenBySlot[slot] ?? 0
        if left < 0 || taken > cap || cap - left != taken {
            violations.append("redis slot \(slot): capacity \(cap), remaining \(left), records taken \(taken)")
        }
    }
    for (citizen, count) in activeByCitizen where count > limit || Int(held[citizen] ?? "") != count {
        violations.append("redis citizen \(citizen.prefix(8))…: \(count) active, holding says \(held[citizen] ?? "nil")")
    }
    let database = try stack.sqlite()
    violations += try database.statement("""
        SELECT s.id, s.capacity, COUNT(r.id) FROM slots s LEFT JOIN reservations r
          ON r.campaign_id = s.campaign_id AND r.slot_id = s.id AND r.status <> 'cancelled'
        WHERE s.campaign_id = ? GROUP BY s.id HAVING COUNT(r.id) > s.capacity
        """).rows([.text(campaign)]) { "sqlite slot \($0.text(0)): \($0.int(2)) taken of \($0.int(1))" }
    violations += try database.statement("""
        SELECT citizen_key, COUNT(*) FROM reservations WHERE campaign_id = ? AND status <> 'cancelled'
        GROUP BY citizen_key HAVING COUNT(*) > ?
        """).rows([.text(campaign), .integer(Int64(limit))]) { "sqlite citizen \($0.text(0).prefix(8))…: \($0.int(1)) active" }
    // Every state change written is sealed by its batch's audit row.
    let audit = try OperatorDatabase(path: stack.databasePath).verifyAudit()
    if let broken = audit.firstBreak { violations.append("audit chain: \(broken)") }
    if let broken = audit.eventBreak { violations.append("reservation events: \(broken)") }
    return violations
}
