@testable import AllotServer
import AllotDomain
import Foundation
import RedisClient
import SQLiteStore

/// DESIGN.md invariants 1 and 2, read straight from Redis and from SQLite:
/// returns every violation found (empty when they hold).
/// A spread campaign's are summed over its buckets, and a slot's places
/// left are the pool's, the buckets' and those of moves under way.
func invariantViolations(_ stack: LiveStack, campaign: String, limit: Int) throws -> [String] {
    var violations: [String] = []
    let home = "{c:\(campaign)}"
    func hash(_ key: String, _ tag: String) throws -> [String: String] {
        let items = try stack.keyspace.command(["HGETALL", key], slot: ClusterSlot.of(tag)).elements?.compactMap(\.text) ?? []
        return Dictionary(uniqueKeysWithValues: stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], items[$0 + 1]) })
    }
    let config = try hash(home + ":cfg", home)
    let buckets = Int(config["buckets"] ?? "1") ?? 1
    let series = config["series"].flatMap(CampaignSeries.stored)?.id
    let layout = CampaignLayout(campaign, buckets: CampaignBuckets(buckets, series: series) ?? .single)
    let spread = layout.isSpread
    // Names start with the prefix (the tag, or a series' tag and the campaign).
    let prefixes = layout.bucketKeys.map { ($0.prefix, $0.tag) }
    let capacity = try hash(home + ":cap", home)
    var remaining = try hash(home + (spread ? ":pool" : ":rem"), home)
    var held: [String: String] = [:], records: [String: String] = [:]
    var holds: [String: String] = [:], holders: [String: String] = [:]
    for (prefix, tag) in prefixes {
        let pairs = try stack.keyspace.command(["ZRANGE", prefix + ":holds", "0", "-1", "WITHSCORES"], slot: ClusterSlot.of(tag))
            .elements?.compactMap(\.text) ?? []
        for index in stride(from: 0, to: pairs.count - 1, by: 2) { holds[pairs[index]] = pairs[index + 1] }
        holders.merge(try hash(prefix + ":holders", tag)) { _, new in new }
        for (citizen, count) in try hash(prefix + ":held", tag) {
            if held[citizen] != nil { violations.append("citizen \(citizen.prefix(8))… holds places in two buckets") }
            held[citizen] = count
        }
        records.merge(try hash(prefix + ":recs", tag)) { _, new in new }
        guard spread else { continue }
        remaining.merge(try hash(prefix + ":rem", tag)) { String((Int($0) ?? 0) + (Int($1) ?? 0)) }
    }
    // Moves under way hold places too (credited ones are in a bucket already).
    for (prefix, tag) in [(home, home)] + (spread ? prefixes : []) where spread {
        for (id, record) in try hash(prefix + ":xfer", tag) {
            let fields = record.split(separator: "|").map(String.init)
            let target = layout.bucketKeys[Int(fields[2]) ?? 0]
            let credited = try stack.keyspace.command(["EXISTS", target.prefix + ":xin:" + id], slot: target.slot).integer == 1
            if !credited { remaining[fields[0]] = String((Int(remaining[fields[0]] ?? "0") ?? 0) + (Int(fields[1]) ?? 0)) }
        }
    }
    var takenBySlot: [String: Int] = [:], activeByCitizen: [String: Int] = [:], holdsByCitizen: [String: Int] = [:]
    for (id, record) in records {
        let fields = record.split(separator: "|").map(String.init)
        // Issue 14's holds: a held record is in the holds at its expiry,
        // and named as its citizen's hold; nothing else is.
        if fields[0] == "held" {
            holdsByCitizen[fields[4], default: 0] += 1
            if fields.count != 8 || holds[id].flatMap({ Int64($0) }) != Int64(fields[7]) {
                violations.append("redis hold \(id): not in the holds at its expiry (\(holds[id] ?? "absent"))")
            }
            if holders[fields[4]] != id { violations.append("redis hold \(id): its citizen's hold is \(holders[fields[4]] ?? "none")") }
        } else if holds[id] != nil {
            violations.append("redis reservation \(id) is \(fields[0]) but still in the holds")
        }
        guard fields[0] != "cancelled", fields[0] != "expired" else { continue }
        takenBySlot[fields[1], default: 0] += 1
        activeByCitizen[fields[4], default: 0] += 1
    }
    for (citizen, count) in holdsByCitizen where count > 1 { violations.append("redis citizen \(citizen.prefix(8))… holds \(count)") }
    for id in holds.keys where records[id] == nil { violations.append("redis hold \(id) has no record") }
    for (citizen, id) in holders where !(records[id]?.hasPrefix("held|") ?? false) {
        violations.append("redis citizen \(citizen.prefix(8))… named as holding \(id), which is not held")
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
          ON r.campaign_id = s.campaign_id AND r.slot_id = s.id AND r.status <> 'cancelled' AND r.status <> 'expired'
        WHERE s.campaign_id = ? GROUP BY s.id HAVING COUNT(r.id) > s.capacity
        """).rows([.text(campaign)]) { "sqlite slot \($0.text(0)): \($0.int(2)) taken of \($0.int(1))" }
    violations += try database.statement("""
        SELECT citizen_key, COUNT(*) FROM reservations WHERE campaign_id = ? AND status <> 'cancelled' AND status <> 'expired'
        GROUP BY citizen_key HAVING COUNT(*) > ?
        """).rows([.text(campaign), .integer(Int64(limit))]) { "sqlite citizen \($0.text(0).prefix(8))…: \($0.int(1)) active" }
    // Every state change written is sealed by its batch's audit row.
    let audit = try OperatorDatabase(path: stack.databasePath).verifyAudit()
    if let broken = audit.firstBreak { violations.append("audit chain: \(broken)") }
    if let broken = audit.eventBreak { violations.append("reservation events: \(broken)") }
    return violations
}

/// Issue 14's series limit, from SQLite: no citizen has more reservations
/// that count (not cancelled) in the series' campaigns than its limit (all
/// made within its window, in a test).
func seriesViolations(_ stack: LiveStack, campaigns: [String], limit: Int) throws -> [String] {
    let marks = campaigns.map { _ in "?" }.joined(separator: ",")
    return try stack.sqlite().statement("""
        SELECT citizen_key, COUNT(*) FROM reservations WHERE campaign_id IN (\(marks)) AND status <> 'cancelled'
        GROUP BY citizen_key HAVING COUNT(*) > ?
        """).rows(campaigns.map { .text($0) } + [.integer(Int64(limit))]) { "series citizen \($0.text(0).prefix(8))…: \($0.int(1))" }
}
