import AllotDomain
import RedisClient
import SQLiteStore

/// `GET /v1/admin/campaigns/{cid}/stats`: live counts from Redis, what SQLite
/// holds, and how far the persister is behind.
extension AdminStore {
    /// A spread campaign's are the sums of its home's (capacities, the pool,
    /// the loops' refusals) and its buckets' (places, cancels and redeems),
    /// and the places of moves debited and not yet credited: those are
    /// places left, on their way between shards (with replicated durability
    /// a move waits for a replica, and a shard without one holds it).
    func stats(_ id: String) throws -> CampaignStats { try stats(id, whole: true) }

    /// The dashboard's sample, once a second: the counters and the lag, but
    /// not SQLite's count of rows (a scan) nor the places of moves in
    /// transit (a read of every move record).
    func sampleStats(_ id: String) throws -> CampaignStats { try stats(id, whole: false) }

    private func stats(_ id: String, whole: Bool) throws -> CampaignStats {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        let layout = campaign.layout
        let home = layout.home
        var counts = try StatsReply(redis.run(Scripts.stats, slot: home.slot, keys: [home.stats, layout.unassignedPlaces, home.capacity, home.holds],
                                              arguments: []))
        if layout.isSpread {
            for keys in layout.bucketKeys {
                // A bucket has no capacities: its third key is empty.
                counts.add(try StatsReply(redis.run(Scripts.stats, slot: keys.slot, keys: [keys.stats, keys.remaining, keys.capacity, keys.holds],
                                                    arguments: [])))
            }
            if whole { counts.addRemaining(try placesInTransit(layout)) }
        }
        let persisted = whole ? try database.statement("SELECT COUNT(*) FROM reservations WHERE campaign_id = ?")
            .rows([.text(id)]) { $0.int(0) }.first ?? 0 : 0
        let lag = try layout.bucketKeys.map { try persistLagMillis($0) }.max() ?? 0
        return CampaignStats(counts: counts, persisted: Int(persisted), persistLagMillis: lag)
    }

    /// Places of moves out of the pool or a bucket not yet credited to their
    /// target (a credited one's places are in the target already).
    private func placesInTransit(_ layout: CampaignLayout) throws -> Int {
        var places = 0
        for source in [layout.home] + layout.bucketKeys {
            let records = try redis.checked(["HGETALL", source.transfers], slot: source.slot).pairs ?? [:]
            for (id, text) in records {
                guard let record = PlaceTransfer.Record(text), record.target >= 0, record.target < layout.bucketKeys.count else {
                    continue
                }
                let target = layout.bucketKeys[record.target]
                if try redis.checked(["EXISTS", target.transferCredit(id)], slot: target.slot).integer == 0 { places += record.places }
            }
        }
        return places
    }

    /// Age of the oldest stream entry not yet acknowledged by the persister:
    /// the smallest pending entry, or the first one not yet delivered.
    func persistLagMillis(_ keys: CampaignKeys) throws -> Int64 {
        let replies = try redis.pipeline([
            ["XPENDING", keys.stream, GlobalKeys.persistGroup],
            ["XINFO", "GROUPS", keys.stream],
            ["TIME"],  // the clock of the stream's own master
        ].map { RoutedCommand(slot: keys.slot, $0) })
        guard let time = replies[2].elements, time.count == 2, let seconds = time[0].integer, let micros = time[1].integer
        else { return 0 }
        let nowMillis = seconds * 1000 + micros / 1000
        var oldest: Int64?
        if let pending = replies[0].elements, pending.count >= 2, (pending[0].integer ?? 0) > 0, let smallest = pending[1].text {
            oldest = StreamID.millis(smallest)
        }
        if let lastDelivered = Self.lastDeliveredID(replies[1]) {
            let next = try redis.command(["XRANGE", keys.stream, "(" + lastDelivered, "+", "COUNT", "1"], slot: keys.slot)
            if let entry = next.elements?.first?.elements?.first?.text, let millis = StreamID.millis(entry) {
                oldest = min(oldest ?? millis, millis)
            }
        }
        guard let oldest else { return 0 }
        // At least 1 while anything is outstanding: 0 means caught up.
        return max(1, nowMillis - oldest)
    }

    static func lastDeliveredID(_ groups: RedisReply) -> String? {
        for group in groups.elements ?? [] {
            guard let fields = group.elements else { continue }
            var values: [String: String] = [:]
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                if let key = fields[index].text, let value = fields[index + 1].text { values[key] = value }
            }
            if values["name"] == GlobalKeys.persistGroup { return values["last-delivered-id"] }
        }
        return nil
    }
}

extension AdminStore {
    /// `GET /v1/admin/audit?after=ID&limit=N`: the next rows of the trail.
    func auditPage(after: Int64, limit: Int) throws -> [AuditLog.StoredEntry] {
        try AuditLog(database: database).page(after: after, limit: limit)
    }

    /// `GET /v1/admin/audit/reservation-events?after=SEQ&limit=N`.
    func reservationEventsPage(after: Int64, limit: Int) throws -> [AuditLog.StoredEvent] {
        try AuditLog(database: database).eventsPage(after: after, limit: limit)
    }
}

/// A campaign's stats (API.md): live counts from Redis, what SQLite holds.
struct CampaignStats {
    static let rejectionReasons = ["slot_full", "citizen_limit_reached", "rate_limited", "campaign_not_open", "not_eligible",
                                   "invalid"]

    let counts: StatsReply
    let persisted: Int
    let persistLagMillis: Int64

    /// Places ever taken: taken now, and those cancelled or expired since.
    var takenEver: Int { counts.capacity &- counts.remaining &+ counts.counter("cancelled") &+ counts.counter("expired") }
    var rejections: [Int] { Self.rejectionReasons.map { counts.counter("rej_" + $0) } }

    /// The reservation script counts rejections only: places taken are
    /// capacity − remaining (= held + confirmed + redeemed), and every
    /// attempt either took a place (kept, or cancelled or expired since) or
    /// was rejected.
    func write(to json: inout JSONWriter) {
        let taken = counts.capacity &- counts.remaining
        let cancelled = counts.counter("cancelled"), redeemed = counts.counter("redeemed"), expired = counts.counter("expired")
        let rejected = Self.rejectionReasons.reduce(0) { $0 &+ counts.counter("rej_" + $1) }
        json.beginObject()
        json.field("capacity", counts.capacity)
        json.field("held", counts.held)
        json.field("confirmed", taken &- redeemed &- counts.held)
        json.field("cancelled", cancelled)
        json.field("redeemed", redeemed)
        json.field("expired", expired)
        json.field("remaining", counts.remaining)
        json.field("attempts", taken &+ cancelled &+ expired &+ rejected)
        json.key("rejected")
        json.beginObject()
        for reason in Self.rejectionReasons {
            json.key(reason)
            json.number(counts.counter("rej_" + reason))
        }
        json.endObject()
        json.field("persisted", persisted)
        json.field("persist_lag_ms", Int(persistLagMillis))
        json.endObject()
    }
}


