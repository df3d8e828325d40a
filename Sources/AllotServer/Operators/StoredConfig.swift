import AllotDomain
import SQLiteStore

/// Operators' configuration as SQLite holds it (the record of truth).
struct StoredConfig {
    let database: SQLiteDatabase

    func campaignIDs() throws -> [String] {
        try database.statement("SELECT id FROM campaigns ORDER BY id").rows { $0.text(0) }
    }

    /// Rules SQLite holds that no longer pass are an error naming the
    /// campaign, as for rate limits: never a campaign without its rules.
    func campaign(_ id: String) throws -> Campaign? {
        let rows = try database.statement(
            """
            SELECT name, status, id_scheme, per_citizen_limit, opens_at, closes_at, buckets, eligibility, COALESCE(series, ''),
                   COALESCE(lottery, ''), COALESCE(hold_seconds, 0), COALESCE(waitlist_offer_seconds, 0)
            FROM campaigns WHERE id = ?
            """
        ).rows([.text(id)]) { row in
            (Campaign(id: id, name: row.text(0), status: CampaignStatus(rawValue: row.text(1)) ?? .draft,
                      idScheme: IDScheme(rawValue: row.text(2)) ?? .any, perCitizenLimit: Int(row.int(3)),
                      opensAtMillis: row.int(4), closesAtMillis: row.int(5), buckets: CampaignBuckets(Int(row.int(6))) ?? .single),
             row.text(7), row.text(8), row.text(9), Int(row.int(10)), Int(row.int(11)))
        }
        guard let (campaign, rulesText, seriesText, lotteryText, holdSeconds, offerSeconds) = rows.first else { return nil }
        guard let eligibility = EligibilityRules.stored(rulesText) else {
            throw StoredConfigError("campaign \(id): stored eligibility rules do not pass (\(rulesText)); set them again")
        }
        var series: CampaignSeries?
        if !seriesText.isEmpty {
            guard let stored = CampaignSeries.stored(seriesText) else {
                throw StoredConfigError("campaign \(id): stored series does not parse (\(seriesText))")
            }
            series = stored
        }
        var lottery: LotterySettings?
        if !lotteryText.isEmpty {
            guard let stored = LotterySettings.stored(lotteryText) else {
                throw StoredConfigError("campaign \(id): stored lottery settings do not parse (\(lotteryText))")
            }
            lottery = stored
        }
        return Campaign(id: id, name: campaign.name, status: campaign.status, idScheme: campaign.idScheme,
                        perCitizenLimit: campaign.perCitizenLimit, opensAtMillis: campaign.opensAtMillis,
                        closesAtMillis: campaign.closesAtMillis, buckets: campaign.buckets, eligibility: eligibility, series: series,
                        lottery: lottery, holdSeconds: holdSeconds > 0 ? holdSeconds : nil,
                        waitlist: offerSeconds > 0 ? WaitlistSettings(offerSeconds: offerSeconds) : nil)
    }

    /// Every campaign of a series, with how many buckets it has.
    func campaigns(inSeries series: String) throws -> [(id: String, series: CampaignSeries?, buckets: Int, idScheme: String)] {
        try database.statement("SELECT id, series, buckets, id_scheme FROM campaigns WHERE series IS NOT NULL ORDER BY id").rows {
            ($0.text(0), CampaignSeries.stored($0.text(1)), Int($0.int(2)), $0.text(3))
        }.filter { $0.series?.id == series }
    }

    /// How a campaign's keys are laid out (its buckets, and its series),
    /// read alone: the persister needs no more, and must not stop on a
    /// campaign whose other settings no longer parse.
    func buckets(_ id: String) throws -> CampaignBuckets? {
        try database.statement("SELECT buckets, COALESCE(series, '') FROM campaigns WHERE id = ?").rows([.text(id)]) { row in
            let series = row.text(1)
            return CampaignBuckets(Int(row.int(0)), series: series.isEmpty ? nil : CampaignSeries.stored(series)?.id)
        }.first ?? nil
    }

    /// The route a campaign's reservation ids carry (Schema.addRoutes).
    func route(_ id: String) throws -> UInt32? {
        try database.statement("SELECT route FROM campaigns WHERE id = ? AND route IS NOT NULL").rows([.text(id)]) {
            UInt32(clamping: $0.int(0))
        }.first
    }

    /// Limits SQLite holds that no longer pass (a range that has tightened)
    /// are an error naming the campaign: `allot recover` must not bring a
    /// campaign back with no limits at all (fail closed).
    func rateLimits(_ id: String) throws -> RateLimits {
        let text = try database.statement("SELECT rate_limits FROM campaigns WHERE id = ?").rows([.text(id)]) { $0.text(0) }
        do {
            return try RateLimits.decode(Fields.parse(Array((text.first ?? "{}").utf8)))
        } catch {
            throw StoredConfigError("campaign \(id): stored rate limits are out of range (\(error.detail)); set them again")
        }
    }

    func sites(_ id: String) throws -> [Site] {
        try database.statement("SELECT id, name, address FROM sites WHERE campaign_id = ? ORDER BY id").rows([.text(id)]) {
            Site(id: $0.text(0), name: $0.text(1), address: $0.text(2))
        }
    }

    func slots(_ id: String) throws -> [Slot] {
        try database.statement(
            "SELECT id, site_id, starts_at, ends_at, capacity FROM slots WHERE campaign_id = ? ORDER BY id"
        ).rows([.text(id)]) {
            Slot(id: $0.text(0), siteID: $0.text(1), startsAtMillis: $0.int(2), endsAtMillis: $0.int(3), capacity: Int($0.int(4)))
        }
    }
}

struct StoredConfigError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
