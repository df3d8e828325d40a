import AllotDomain

/// Operators' answers, rendered from what the admin store returns (the
/// store knows SQLite and Redis, not HTTP).
enum OperatorAnswers {
    static func campaign(_ campaign: Campaign, status: Int) -> Answer {
        var json = JSONWriter()
        campaign.write(to: &json, nowMillis: WallClock.nowMillis(), forOperators: true)
        return .json(status, json.bytes)
    }

    static func sitesPut(_ count: Int) -> Answer {
        var json = JSONWriter()
        json.beginObject()
        json.field("updated", count)
        json.endObject()
        return .json(200, json.bytes)
    }

    static func slotsPut(_ count: Int, raised: [(slot: String, capacity: Int)]) -> Answer {
        var json = JSONWriter()
        json.beginObject()
        json.field("updated", count)
        json.key("raised")
        json.beginArray()
        for (slot, capacity) in raised {
            json.beginObject(); json.field("id", slot); json.field("capacity", capacity); json.endObject()
        }
        json.endArray()
        json.endObject()
        return .json(200, json.bytes)
    }

    static func slot(_ patched: (slot: Slot, remaining: Int)) -> Answer {
        var json = JSONWriter()
        json.beginObject()
        json.field("id", patched.slot.id)
        json.field("site_id", patched.slot.siteID)
        json.field("starts_at", Timestamp.format(millis: patched.slot.startsAtMillis, alwaysFraction: false))
        json.field("ends_at", Timestamp.format(millis: patched.slot.endsAtMillis, alwaysFraction: false))
        json.field("capacity", patched.slot.capacity)
        json.field("remaining", patched.remaining)
        json.endObject()
        return .json(200, json.bytes)
    }

    static func rateLimits(_ limits: RateLimits) -> Answer {
        var json = JSONWriter()
        limits.write(to: &json)
        return .json(200, json.bytes)
    }

    static func stats(_ stats: CampaignStats) -> Answer {
        var json = JSONWriter()
        stats.write(to: &json)
        return .json(200, json.bytes)
    }

    static func eventsPage(_ rows: [AuditLog.StoredEvent], after: Int64) -> Answer {
        page("events", rows, nextAfter: rows.last?.seq ?? after, rowBytes: 256) { json, row in
            json.beginObject()
            json.field("seq", Int(row.seq))
            json.field("reservation_id", row.reservationID)
            json.field("campaign_id", row.campaignID)
            json.field("status", row.status)
            json.field("slot_id", row.slotID)
            json.field("site_id", row.siteID)
            json.field("actor", row.actor)
            json.field("at", Timestamp.format(millis: row.atMillis))
            json.field("leaf", Hex.encode(row.leaf))
            json.endObject()
        }
    }

    static func auditPage(_ rows: [AuditLog.StoredEntry], after: Int64) -> Answer {
        page("entries", rows, nextAfter: rows.last?.entry.id ?? after, rowBytes: 512) { json, row in
            row.entry.write(to: &json, hash: row.hash)
        }
    }

    /// `{"<key>": [rows…], "next_after": N}`: the audit endpoints' pages.
    private static func page<Row>(_ key: String, _ rows: [Row], nextAfter: Int64, rowBytes: Int,
                                  _ write: (inout JSONWriter, Row) -> Void) -> Answer {
        var json = JSONWriter(capacity: rowBytes * max(1, rows.count))
        json.beginObject()
        json.key(key)
        json.beginArray()
        for row in rows { write(&json, row) }
        json.endArray()
        json.field("next_after", Int(nextAfter))
        json.endObject()
        return .json(200, json.bytes)
    }
}
