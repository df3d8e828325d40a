/// A place where goods are handed out (pharmacy, hall).
public struct Site: Equatable, Sendable {
    public static let textBytesMax = 300
    public static let perCallMax = 10_000

    public var id: String
    public var name: String
    public var address: String

    public init(id: String, name: String, address: String) {
        self.id = id
        self.name = name
        self.address = address
    }

    public static func decodeList(_ fields: Fields) throws(Problem) -> [Site] {
        try fields.allowOnly(["sites"])
        var sites: [Site] = []
        for (index, element) in try fields.array("sites", countMax: perCallMax).enumerated() {
            let site = try Fields(element, prefix: "sites[\(index)].")
            try site.allowOnly(["id", "name", "address"])
            sites.append(Site(id: try site.identifier("id"), name: try site.text("name", bytesMax: textBytesMax),
                              address: try site.text("address", bytesMax: textBytesMax)))
        }
        try requireUnique(sites.map(\.id), field: "sites")
        return sites
    }
}

/// A time window at a site with a number of places.
public struct Slot: Equatable, Sendable {
    public static let capacityMax = 1_000_000
    public static let perCallMax = 10_000

    public var id: String
    public var siteID: String
    public var startsAtMillis: Int64
    public var endsAtMillis: Int64
    public var capacity: Int

    public init(id: String, siteID: String, startsAtMillis: Int64, endsAtMillis: Int64, capacity: Int) {
        self.id = id
        self.siteID = siteID
        self.startsAtMillis = startsAtMillis
        self.endsAtMillis = endsAtMillis
        self.capacity = capacity
    }

    public static func decodeList(_ fields: Fields) throws(Problem) -> [Slot] {
        try fields.allowOnly(["slots"])
        var slots: [Slot] = []
        for (index, element) in try fields.array("slots", countMax: perCallMax).enumerated() {
            let slot = try Fields(element, prefix: "slots[\(index)].")
            try slot.allowOnly(["id", "site_id", "starts_at", "ends_at", "capacity"])
            let decoded = Slot(id: try slot.identifier("id"), siteID: try slot.identifier("site_id"),
                               startsAtMillis: try slot.timestamp("starts_at"), endsAtMillis: try slot.timestamp("ends_at"),
                               capacity: try slot.integer("capacity", in: 0...capacityMax))
            guard decoded.startsAtMillis < decoded.endsAtMillis else {
                throw Problem.invalidField("slots[\(index)].ends_at", "must be after starts_at")
            }
            slots.append(decoded)
        }
        try requireUnique(slots.map(\.id), field: "slots")
        return slots
    }

    public static func decodeCapacity(_ fields: Fields) throws(Problem) -> Int {
        try fields.allowOnly(["capacity"])
        return try fields.integer("capacity", in: 0...capacityMax)
    }
}

func requireUnique(_ ids: [String], field: String) throws(Problem) {
    var seen = Set<String>()
    for id in ids where !seen.insert(id).inserted {
        throw Problem.invalidField(field, "id \(id) appears twice")
    }
}

/// `PUT .../rate-limits`: a missing bucket is unlimited.
public struct RateLimits: Equatable, Sendable {
    public var global: BucketPolicy?
    public var ip: BucketPolicy?
    public var citizen: BucketPolicy?

    public init(global: BucketPolicy? = nil, ip: BucketPolicy? = nil, citizen: BucketPolicy? = nil) {
        self.global = global
        self.ip = ip
        self.citizen = citizen
    }

    public subscript(bucket: BucketName) -> BucketPolicy? {
        switch bucket {
        case .global: return global
        case .ip: return ip
        case .citizen: return citizen
        }
    }

    public static func decode(_ fields: Fields) throws(Problem) -> RateLimits {
        try fields.allowOnly(Set(BucketName.allCases.map(\.rawValue)))
        var limits = RateLimits()
        for bucket in BucketName.allCases {
            guard let policy = try fields.object(bucket.rawValue) else { continue }
            try policy.allowOnly(["rate", "burst"])
            let rate = try policy.number("rate"), burst = try policy.number("burst")
            guard let decoded = BucketPolicy(rate: rate, burst: burst) else {
                throw Problem.invalidField(bucket.rawValue, BucketPolicy.rangeDescription)
            }
            switch bucket {
            case .global: limits.global = decoded
            case .ip: limits.ip = decoded
            case .citizen: limits.citizen = decoded
            }
        }
        return limits
    }

    public func write(to json: inout JSONWriter) {
        json.beginObject()
        for bucket in BucketName.allCases {
            guard let policy = self[bucket] else { continue }
            json.key(bucket.rawValue)
            json.beginObject()
            json.key("rate"); json.number(policy.rate)
            json.key("burst"); json.number(policy.burst)
            json.endObject()
        }
        json.endObject()
    }
}
