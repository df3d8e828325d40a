/// Campaigns that share a rolling limit per citizen (issue 14): at most
/// `limit` reservations in any `windowDays` days across all of them, as
/// Taiwan rationed masks per id per 7 days. Set when a campaign is made
/// and never changed (it decides where the campaign's keys live); every
/// campaign of a series names the same limit, window and buckets.
public struct CampaignSeries: Equatable, Sendable, StoredAsJSON {
    public static let limitRange = 1...100
    public static let windowDaysRange = 1...366

    public let id: String
    public let limit: Int
    public let windowDays: Int

    public init?(id: String, limit: Int, windowDays: Int) {
        guard OperatorID.isValid(id), Self.limitRange.contains(limit), Self.windowDaysRange.contains(windowDays) else { return nil }
        self.id = id
        self.limit = limit
        self.windowDays = windowDays
    }

    public var windowMillis: Int64 { Int64(windowDays) * 86_400_000 }

    public static func decode(_ fields: Fields) throws(Problem) -> CampaignSeries {
        try fields.allowOnly(["id", "limit", "window_days"])
        let id = try fields.identifier("id")
        let limit = try fields.integer("limit", in: limitRange)
        let days = try fields.integer("window_days", in: windowDaysRange)
        return CampaignSeries(id: id, limit: limit, windowDays: days)!
    }

    public func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("id", id)
        json.field("limit", limit)
        json.field("window_days", windowDays)
        json.endObject()
    }
}
