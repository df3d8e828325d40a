public enum CampaignStatus: String, Sendable, CaseIterable {
    case draft, open, paused, closed
}

/// A campaign as operators configure it (API.md `Campaign`).
public struct Campaign: Equatable, Sendable {
    public static let nameBytesMax = 200
    public static let perCitizenLimitMax = 100
    public static let holdSecondsRange = 1...86_400

    public var id: String
    public var name: String
    public var status: CampaignStatus
    public var idScheme: IDScheme
    public var perCitizenLimit: Int
    public var opensAtMillis: Int64
    public var closesAtMillis: Int64
    /// Shards the campaign is spread over; set at creation only.
    public var buckets: CampaignBuckets
    /// Who may book which slot (issue 14): pickup days, an age range.
    public var eligibility: EligibilityRules
    /// The series whose rolling limit the campaign shares; set at creation
    /// only (its buckets are the series', `buckets.series`).
    public let series: CampaignSeries?
    /// First come (reservations) or lottery (registrations, then a draw);
    /// set at creation only, with a lottery's settings.
    public let allocation: Allocation
    public let lottery: LotterySettings?
    /// A campaign with holds (issue 14): an attempt holds its place this
    /// long, until the citizen confirms it; in a lottery, a winner's place.
    /// Set at creation only: citizens are told from the start whether a
    /// booking needs confirming.
    public let holdSeconds: Int?
    /// A first-come waitlist (issue 14): citizens refused `slot_full` join
    /// a line; places given back are offered to it. Set at creation only.
    public let waitlist: WaitlistSettings?

    public init(id: String, name: String, status: CampaignStatus, idScheme: IDScheme,
                perCitizenLimit: Int, opensAtMillis: Int64, closesAtMillis: Int64, buckets: CampaignBuckets = .single,
                eligibility: EligibilityRules = .none, series: CampaignSeries? = nil, lottery: LotterySettings? = nil,
                holdSeconds: Int? = nil, waitlist: WaitlistSettings? = nil) {
        self.id = id
        self.name = name
        self.status = status
        self.idScheme = idScheme
        self.perCitizenLimit = perCitizenLimit
        self.opensAtMillis = opensAtMillis
        self.closesAtMillis = closesAtMillis
        // A series' campaign keeps its citizens in the series' buckets.
        self.buckets = CampaignBuckets(buckets.count, series: series?.id)!
        self.eligibility = eligibility
        self.series = series
        allocation = lottery == nil ? .firstCome : .lottery
        self.lottery = lottery
        self.holdSeconds = holdSeconds
        self.waitlist = waitlist
    }

    /// How long a hold lasts, in ms; 0 for a campaign without holds (as
    /// the config hash keeps it, RedisConfig).
    public var holdMillis: Int64 { Int64(holdSeconds ?? 0) * 1_000 }

    /// How long a place offered to the next in line is held, in ms; 0 for
    /// none: a first-come waitlist's `offer_seconds`, or a lottery with
    /// holds' `hold_seconds` (its line is the entries in ticket order).
    public var offerMillis: Int64 {
        Int64(waitlist?.offerSeconds ?? (allocation == .lottery ? holdSeconds ?? 0 : 0)) * 1_000
    }

    /// The status a citizen sees: an open campaign past `closes_at` is closed.
    public func effectiveStatus(nowMillis: Int64) -> CampaignStatus {
        status == .open && nowMillis >= closesAtMillis ? .closed : status
    }

    /// Whether a reservation may be made now (the script checks the same with
    /// Redis time; this one decides what the read API shows).
    public func acceptsReservations(nowMillis: Int64) -> Bool {
        status == .open && nowMillis >= opensAtMillis && nowMillis < closesAtMillis
    }

    /// Listed by `GET /v1/campaigns`: open now or opening later.
    public func isListed(nowMillis: Int64) -> Bool {
        status == .open && nowMillis < closesAtMillis
    }

    public static let fieldNames: Set<String> = ["id", "name", "status", "id_scheme", "per_citizen_limit", "opens_at", "closes_at",
                                                 "buckets", "eligibility", "series", "allocation", "lottery", "hold_seconds", "waitlist"]

    /// Decodes `POST /v1/admin/campaigns`.
    public static func decode(_ fields: Fields) throws(Problem) -> Campaign {
        try fields.allowOnly(fieldNames)
        let statusText = try fields.optionalString("status") ?? CampaignStatus.draft.rawValue
        guard let status = CampaignStatus(rawValue: statusText) else {
            throw Problem.invalidField("status", "must be one of draft, open, paused, closed")
        }
        guard let scheme = IDScheme(rawValue: try fields.string("id_scheme")) else {
            throw Problem.invalidField("id_scheme", "must be one of any, cn-resident, tw-national")
        }
        let campaign = Campaign(
            id: try fields.identifier("id"), name: try fields.text("name", bytesMax: nameBytesMax),
            status: status, idScheme: scheme,
            perCitizenLimit: try fields.integer("per_citizen_limit", in: 1...perCitizenLimitMax),
            opensAtMillis: try fields.timestamp("opens_at"), closesAtMillis: try fields.timestamp("closes_at"),
            buckets: CampaignBuckets(try fields.optionalInteger("buckets", in: CampaignBuckets.countRange) ?? 1)!,
            eligibility: try decodeEligibility(fields),
            series: try fields.object("series").map { (series: Fields) throws(Problem) in try CampaignSeries.decode(series) },
            lottery: try decodeLottery(fields),
            holdSeconds: try fields.optionalInteger("hold_seconds", in: holdSecondsRange),
            waitlist: try fields.object("waitlist").map { (settings: Fields) throws(Problem) in try WaitlistSettings.decode(settings) })
        // An offer checks the citizen's limit in the step that makes it; a
        // series' rolling limit is counted across campaigns, which an offer
        // does not do.
        if campaign.waitlist != nil {
            guard campaign.allocation == .firstCome else { throw Problem.invalidField("waitlist", "is for allocation first_come") }
            guard campaign.series == nil else {
                throw Problem.invalidField("waitlist", "is not for a campaign of a series (an offer does not count the series' limit)")
            }
        }
        try campaign.validateWindow()
        try campaign.validateEligibility()
        return campaign
    }

    /// Applies `PATCH /v1/admin/campaigns/{cid}`.
    public func patched(with fields: Fields) throws(Problem) -> Campaign {
        try fields.allowOnly(["name", "status", "per_citizen_limit", "opens_at", "closes_at", "eligibility"])
        var next = self
        if let name = try fields.optionalText("name", bytesMax: Self.nameBytesMax) { next.name = name }
        if let text = try fields.optionalString("status") {
            guard let status = CampaignStatus(rawValue: text) else {
                throw Problem.invalidField("status", "must be one of draft, open, paused, closed")
            }
            next.status = status
        }
        if let limit = try fields.optionalInteger("per_citizen_limit", in: 1...Self.perCitizenLimitMax) {
            next.perCitizenLimit = limit
        }
        if let opens = try fields.optionalTimestamp("opens_at") { next.opensAtMillis = opens }
        if let closes = try fields.optionalTimestamp("closes_at") { next.closesAtMillis = closes }
        // The object replaces the rules whole; null removes them. Not for a
        // campaign with a waitlist: its lines were checked against the
        // rules at each join, and offers are made without the ids.
        if fields.has("eligibility") {
            next.eligibility = try Self.decodeEligibility(fields)
            guard waitlist == nil || next.eligibility == eligibility else {
                throw Problem.invalidField("eligibility", "a campaign with a waitlist keeps the rules it was made with")
            }
        }
        try next.validateWindow()
        try next.validateEligibility()
        return next
    }

    /// `allocation` and, for a lottery, its settings (required then, and
    /// only then). A lottery is not one of a series (its draw gives each
    /// entrant one place at most).
    private static func decodeLottery(_ fields: Fields) throws(Problem) -> LotterySettings? {
        let text = try fields.optionalString("allocation") ?? Allocation.firstCome.rawValue
        guard let allocation = Allocation(rawValue: text) else {
            throw Problem.invalidField("allocation", "must be one of first_come, lottery")
        }
        let settings = try fields.object("lottery")
        switch (allocation, settings) {
        case (.firstCome, nil): return nil
        case (.firstCome, _?): throw Problem.invalidField("lottery", "is for allocation lottery only")
        case (.lottery, nil): throw Problem.invalidField("lottery", "is required with allocation lottery (public_value_source)")
        case (.lottery, let settings?):
            guard !fields.has("series") else { throw Problem.invalidField("series", "a lottery campaign is not one of a series") }
            // Its winners' places are taken where its registrations are.
            guard (try fields.optionalInteger("buckets", in: CampaignBuckets.countRange) ?? 1) == 1 else {
                throw Problem.invalidField("buckets", "a lottery campaign has one bucket")
            }
            return try LotterySettings.decode(settings)
        }
    }

    private static func decodeEligibility(_ fields: Fields) throws(Problem) -> EligibilityRules {
        guard let rules = try fields.object("eligibility") else { return .none }
        return try EligibilityRules.decode(rules)
    }

    /// An age range needs ids that carry a birth date.
    func validateEligibility() throws(Problem) {
        guard eligibility.ageRange == nil || idScheme == .cnResident else {
            throw Problem.invalidField("eligibility.age", "needs id_scheme cn-resident (its ids carry the birth date)")
        }
    }

    func validateWindow() throws(Problem) {
        guard opensAtMillis < closesAtMillis else { throw Problem.invalidField("closes_at", "must be after opens_at") }
    }

    /// Operators also see `buckets` (how the campaign is spread over shards).
    public func write(to json: inout JSONWriter, nowMillis: Int64, forOperators: Bool = false) {
        json.beginObject()
        json.field("id", id)
        json.field("name", name)
        json.field("status", effectiveStatus(nowMillis: nowMillis).rawValue)
        json.field("id_scheme", idScheme.rawValue)
        json.field("per_citizen_limit", perCitizenLimit)
        json.field("opens_at", Timestamp.format(millis: opensAtMillis, alwaysFraction: false))
        json.field("closes_at", Timestamp.format(millis: closesAtMillis, alwaysFraction: false))
        if forOperators { json.field("buckets", buckets.count) }
        if !eligibility.isEmpty {
            json.key("eligibility")
            eligibility.write(to: &json)
        }
        if let series {
            json.key("series")
            series.write(to: &json)
        }
        json.field("allocation", allocation.rawValue)
        if let lottery {
            json.key("lottery")
            lottery.write(to: &json)
        }
        if let holdSeconds { json.field("hold_seconds", holdSeconds) }
        if let waitlist {
            json.key("waitlist")
            waitlist.write(to: &json)
        }
        json.endObject()
    }
}
