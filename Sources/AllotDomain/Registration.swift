/// How a campaign gives out its places (issue 14): first come, first
/// served (reservations), or by lottery (registrations over the window,
/// then a draw).
public enum Allocation: String, Sendable, CaseIterable {
    case firstCome = "first_come"
    case lottery
}

/// A lottery campaign's settings, set at creation: the public value that
/// will feed the draw's seed, named in advance (a randomness beacon round,
/// an official lottery result) so nobody can choose it once entries close.
public struct LotterySettings: Equatable, Sendable, StoredAsJSON {
    public static let sourceBytesMax = 200
    public let publicValueSource: String

    public init(publicValueSource: String) { self.publicValueSource = publicValueSource }

    public static func decode(_ fields: Fields) throws(Problem) -> LotterySettings {
        try fields.allowOnly(["public_value_source"])
        return LotterySettings(publicValueSource: try fields.text("public_value_source", bytesMax: sourceBytesMax))
    }

    public func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("public_value_source", publicValueSource)
        json.endObject()
    }
}

/// A place a registrant asks for: a slot, or any slot at a site
/// (`site:<id>`), as the draw reads it.
public typealias Preference = Draw.Preference

extension Draw.Preference {
    public init?(_ text: String) { self.init(Substring(text)) }
}

/// `POST /v1/campaigns/{cid}/registrations`: the id and ranked preferences.
public struct RegistrationRequest: Equatable, Sendable {
    /// At most 5, within what a draw's entry may carry (`Draw.preferencesMax`).
    public static let preferencesMax = min(5, Draw.preferencesMax)
    public let citizenID: String
    public let preferences: [Preference]

    public static func decode(_ body: ArraySlice<UInt8>) throws(Problem) -> RegistrationRequest {
        let fields = try Fields.parse(Array(body))
        try fields.allowOnly(["citizen_id", "preferences"])
        let citizenID = try fields.string("citizen_id", bytesMax: ReserveRequest.citizenIDBytesMax)
        let why = "must be 1 to \(preferencesMax) different slot ids or site:<site id>, best first"
        let items = try fields.array("preferences", countMax: preferencesMax)
        var preferences: [Preference] = []
        for item in items {
            guard case .string(let text) = item, let preference = Preference(text), !preferences.contains(preference) else {
                throw Problem.invalidField("preferences", why)
            }
            preferences.append(preference)
        }
        guard !preferences.isEmpty else { throw Problem.invalidField("preferences", why) }
        return RegistrationRequest(citizenID: citizenID, preferences: preferences)
    }
}

/// A registration as Redis keeps it (register.lua), one string:
/// `<citizen key>|<preferences, comma-separated>|<created ms>`.
public struct RegistrationRecord: Equatable, Sendable {
    public let citizenKey: String
    public let preferences: [Preference]
    public let createdAtMillis: Int64

    public init(citizenKey: String, preferences: [Preference], createdAtMillis: Int64) {
        self.citizenKey = citizenKey
        self.preferences = preferences
        self.createdAtMillis = createdAtMillis
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let created = Int64(parts[2]) else { return nil }
        let preferences = parts[1].split(separator: ",").map { Preference(String($0)) }
        guard !preferences.isEmpty, preferences.allSatisfy({ $0 != nil }) else { return nil }
        self.init(citizenKey: String(parts[0]), preferences: preferences.compactMap { $0 }, createdAtMillis: created)
    }

    public static func preferencesText(_ preferences: [Preference]) -> String { preferences.map(\.text).joined(separator: ",") }
}
