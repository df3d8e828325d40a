/// A lottery's draw from its frozen registrations (issue 14): entry ids,
/// the Merkle root, the seed, every entry's ticket, rank and outcome, the
/// files anyone can check it with, and the bias report. Pure.
public struct LotteryDraw: Sendable {
    /// A registration as the draw reads it.
    public struct Registration: Sendable {
        public var id: String
        public var citizenKey: String
        public var preferences: [Draw.Preference]
        public var createdAtMillis: Int64

        public init(id: String, citizenKey: String, preferences: [Draw.Preference], createdAtMillis: Int64) {
            self.id = id
            self.citizenKey = citizenKey
            self.preferences = preferences
            self.createdAtMillis = createdAtMillis
        }
    }

    public let description: DrawDescription
    /// Every entry in rank order.
    public let results: [Draw.Result]
    /// The registration of each rank, in the same order.
    public let registrations: [Registration]
    /// Each rank's entry's position among the frozen entries (ids
    /// ascending): its leaf in the tree, for its receipt.
    public let leafIndexOfRank: [Int]
    /// The whole tree (MerkleTreeFile), kept beside the published files.
    public let treeFile: [UInt8]
    public let bias: BiasReport

    /// `registrations` may come in any order (as the stores list them):
    /// the draw depends only on their set.
    public init(campaignID: String, places: [Draw.Place], secret: [UInt8], publicValueSource: String, publicValue: String,
                drawKey: [UInt8], registrations: [Registration]) {
        let entries = registrations.map { Draw.Entry(id: Draw.entryID(citizenKey: $0.citizenKey, drawKey: drawKey), preferences: $0.preferences) }
        var registrationOfEntry: [Draw.Hash: Int] = [:]
        for (index, entry) in entries.enumerated() { registrationOfEntry[entry.id] = index }
        let rules = Draw.rulesDigest(campaignID: campaignID, places: places, publicValueSource: publicValueSource)
        let frozen = entries.sorted { $0.id.lexicographicallyPrecedes($1.id) }
        treeFile = MerkleTreeFile.make(leaves: frozen.map(\.leaf))
        let root = MerkleTreeFile.root(treeFile)
        let seed = Draw.seed(rules: rules, secret: secret, root: root, publicValue: publicValue)
        results = Draw.run(entries: entries, places: places, seed: seed)
        self.registrations = results.map { registrations[registrationOfEntry[$0.entry.id]!] }
        var leafOfEntry: [Draw.Hash: Int] = [:]
        for (index, entry) in frozen.enumerated() { leafOfEntry[entry.id] = index }
        leafIndexOfRank = results.map { leafOfEntry[$0.entry.id]! }
        description = DrawDescription(campaignID: campaignID, places: places, commitment: Draw.commitment(rules: rules, secret: secret),
                                      secret: secret, publicValueSource: publicValueSource, publicValue: publicValue,
                                      entryCount: entries.count, root: root, seed: seed)
        let siteOfSlot = Dictionary(places.map { ($0.slotID, $0.siteID) }) { first, _ in first }
        bias = BiasReport(results: results, registrations: self.registrations, siteOfSlot: siteOfSlot)
    }
}

/// Before a draw is published: winners by registration time and by site
/// against entries. A fair draw does not care when an entry came (the 2011
/// US visa lottery drew most winners from 2 of 30 registration days); a
/// chi-square test of winners by period against entries by period says
/// whether the spread looks like chance. The periods are hours, or for
/// registrations that span less than a day, 24 equal parts of their span.
public struct BiasReport: Equatable, Sendable {
    public struct Row: Equatable, Sendable {
        public var key: String
        public var entries: Int
        public var winners: Int
    }

    /// By period of registration (its start, UTC), in time order.
    public let byPeriod: [Row]
    /// How long each period is.
    public let periodMillis: Int64
    /// By the site of the first preference (entries) and of the place won (winners).
    public let bySite: [Row]
    /// Σ (winners − expected)² / expected over the hours, expected in
    /// proportion to entries; and its degrees of freedom.
    public let chiSquare: Double
    public let degreesOfFreedom: Int
    /// True when the periods' spread would come by chance less than once in
    /// 1000 draws: flagged in the published report for people to look at
    /// (the draw itself is what the commitment and the seed made it).
    public let suspicious: Bool

    init(results: [Draw.Result], registrations: [LotteryDraw.Registration], siteOfSlot: [String: String]) {
        var periods: [Int64: (entries: Int, winners: Int)] = [:]
        var sites: [String: (entries: Int, winners: Int)] = [:]
        let first = registrations.map(\.createdAtMillis).min() ?? 0, last = registrations.map(\.createdAtMillis).max() ?? 0
        let period = last - first >= 86_400_000 ? 3_600_000 : max(1, (last - first + 24) / 24)
        periodMillis = period
        for (result, registration) in zip(results, registrations) {
            let index = (registration.createdAtMillis - first) / period
            periods[index, default: (0, 0)].entries += 1
            if result.wonSlot != nil { periods[index, default: (0, 0)].winners += 1 }
            let firstSite: String? = switch result.entry.preferences.first {
            case .slot(let slot)?: siteOfSlot[slot]
            case .site(let site)?: site
            case nil: nil
            }
            if let firstSite { sites[firstSite, default: (0, 0)].entries += 1 }
            if let won = result.wonSlot, let site = siteOfSlot[won] { sites[site, default: (0, 0)].winners += 1 }
        }
        byPeriod = periods.keys.sorted().map { index in
            Row(key: Timestamp.format(millis: first + index * period, alwaysFraction: true),
                entries: periods[index]!.entries, winners: periods[index]!.winners)
        }
        bySite = sites.keys.sorted().map { Row(key: $0, entries: sites[$0]!.entries, winners: sites[$0]!.winners) }
        let totalEntries = byPeriod.reduce(0) { $0 + $1.entries }, totalWinners = byPeriod.reduce(0) { $0 + $1.winners }
        var chi = 0.0
        if totalEntries > 0, totalWinners > 0 {
            let rate = Double(totalWinners) / Double(totalEntries)
            for row in byPeriod {
                let expected = Double(row.entries) * rate
                if expected > 0 { chi += (Double(row.winners) - expected) * (Double(row.winners) - expected) / expected }
            }
        }
        chiSquare = chi
        degreesOfFreedom = max(0, byPeriod.count - 1)
        suspicious = degreesOfFreedom > 0 && chi > Self.criticalValue(degreesOfFreedom: degreesOfFreedom)
    }

    /// The chi-square value exceeded with probability 0.001, by the
    /// Wilson–Hilferty approximation (within a few percent from 3 degrees
    /// of freedom on; exact values for 1 and 2).
    static func criticalValue(degreesOfFreedom k: Int) -> Double {
        switch k {
        case 1: return 10.828
        case 2: return 13.816
        default:
            let z = 3.090_232, d = Double(k)
            let term = 1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot()
            return d * term * term * term
        }
    }

    public func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("period_ms", Int(periodMillis))
        for (name, rows) in [("by_registration_time", byPeriod), ("by_site", bySite)] {
            json.key(name)
            json.beginArray()
            for row in rows {
                json.beginObject()
                json.field("key", row.key)
                json.field("entries", row.entries)
                json.field("winners", row.winners)
                json.endObject()
            }
            json.endArray()
        }
        json.key("chi_square")
        json.number(chiSquare)
        json.field("degrees_of_freedom", degreesOfFreedom)
        json.key("suspicious")
        json.bool(suspicious)
        json.endObject()
    }
}
