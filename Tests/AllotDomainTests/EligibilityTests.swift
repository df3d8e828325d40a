@testable import AllotDomain
import Testing

/// Eligibility rules (issue 14): pickup days by id parity, age from a
/// resident id's birth date, in the campaign's local time.
struct EligibilityTests {
    /// 2030-01-07 was a Monday; a slot at 09:00 local (UTC+8), 01:00 UTC.
    static func slot(day: Int, hourUTC: Int = 1) -> Int64 {
        Int64(CivilDate.days(year: 2030, month: 1, day: 7 + day)) * 86_400_000 + Int64(hourUTC) * 3_600_000
    }

    /// A valid cn-resident id born on `birth` with serial `serial` (its last
    /// digit before the check character is the serial's last).
    static func resident(_ birth: String, serial: Int) -> String {
        let digits = "110105" + birth + String(format3(serial))
        return digits + String(UnicodeScalar(CNResidentID.checkCharacter(Array(digits.utf8))))
    }

    static func format3(_ n: Int) -> String { String(String(n + 1000).dropFirst()) }

    @Test func taiwansPickupDaysByParity() {
        let rules = EligibilityRules(parityDays: EligibilityRules.taiwanParityDays, utcOffsetMinutes: 480)!
        // A tw-national id ending 7 (odd), and one ending 4 (even).
        let odd = "A123456787", even = "A123456784"
        for (day, oddMay, evenMay) in [(0, true, false), (1, false, true), (2, true, false), (3, false, true), (4, true, false),
                                       (5, false, true), (6, true, true)] {
            #expect((rules.refusal(normalizedID: odd, scheme: .twNational, slotStartsAtMillis: Self.slot(day: day)) == nil) == oddMay,
                    "day \(day) odd")
            #expect((rules.refusal(normalizedID: even, scheme: .twNational, slotStartsAtMillis: Self.slot(day: day)) == nil) == evenMay,
                    "day \(day) even")
        }
        // Monday 23:30 UTC is already Tuesday in UTC+8: the even ids' day.
        #expect(rules.refusal(normalizedID: even, scheme: .twNational, slotStartsAtMillis: Self.slot(day: 0, hourUTC: 23)) == nil)
        #expect(rules.refusal(normalizedID: odd, scheme: .twNational, slotStartsAtMillis: Self.slot(day: 0, hourUTC: 23)) == .pickupDay)
        // A resident id's check X is passed over for its last digit.
        #expect(EligibilityFacts(normalizedID: "11010519491231002X", scheme: .cnResident).lastDigit == 2)
        #expect(EligibilityRules(parityDays: [ParityRule](repeating: .none, count: 7))!
            .refusal(normalizedID: odd, scheme: .twNational, slotStartsAtMillis: Self.slot(day: 6)) == .pickupDay)
    }

    @Test func ageOnTheSlotsLocalDay() {
        let rules = EligibilityRules(ageRange: 60...120, utcOffsetMinutes: 480)!
        // Born 1970-01-08: 60 on 2030-01-08 local (Tuesday), not the day before.
        let id = Self.resident("19700108", serial: 123)
        #expect(rules.refusal(normalizedID: id, scheme: .cnResident, slotStartsAtMillis: Self.slot(day: 0)) == .age)
        #expect(rules.refusal(normalizedID: id, scheme: .cnResident, slotStartsAtMillis: Self.slot(day: 1)) == nil)
        // 16:30 UTC on the Monday is already the Tuesday in UTC+8.
        #expect(rules.refusal(normalizedID: id, scheme: .cnResident, slotStartsAtMillis: Self.slot(day: 0, hourUTC: 17)) == nil)
        // An id that carries no birth date cannot pass an age rule.
        #expect(rules.refusal(normalizedID: "A123456787", scheme: .twNational, slotStartsAtMillis: Self.slot(day: 1)) == .age)
        let young = EligibilityRules(ageRange: 0...17)!
        #expect(young.refusal(normalizedID: Self.resident("20150301", serial: 1), scheme: .cnResident,
                              slotStartsAtMillis: Self.slot(day: 0)) == nil)
        #expect(young.refusal(normalizedID: id, scheme: .cnResident, slotStartsAtMillis: Self.slot(day: 0)) == .age)
        #expect(EligibilityRules()!.refusal(normalizedID: id, scheme: .cnResident, slotStartsAtMillis: 0) == nil)
        #expect(CNResidentID.normalize(id) == id)
    }

    @Test func configurationOutOfRangeIsRefused() {
        #expect(EligibilityRules(parityDays: [.odd]) == nil)
        #expect(EligibilityRules(utcOffsetMinutes: 900) == nil)
        #expect(EligibilityRules(utcOffsetMinutes: .max) == nil)
    }

    @Test func daysBefore1970RoundDown() {
        #expect(Int64(-1).floorDiv(86_400_000) == -1)
        #expect(Int64(0).floorDiv(86_400_000) == 0)
        #expect(Int64(86_399_999).floorDiv(86_400_000) == 0)
    }

    private static func decode(_ json: String) throws(Problem) -> EligibilityRules {
        try EligibilityRules.decode(Fields.parse(Array(json.utf8)))
    }

    @Test func theContractsFormRoundTrips() throws {
        let rules = try Self.decode(#"{"pickup_days":["odd","even","odd","even","odd","even","any"],"age":{"min":60},"utc_offset_minutes":480}"#)
        #expect(rules == EligibilityRules(parityDays: EligibilityRules.taiwanParityDays, ageRange: 60...150, utcOffsetMinutes: 480))
        #expect(EligibilityRules.stored(rules.json) == rules)
        #expect(try Self.decode("{}") == .none)
        #expect(EligibilityRules.stored("{\"age\":{\"min\":9,\"max\":3}}") == nil)
        #expect(EligibilityRules.stored("not json") == nil)
    }

    @Test func badRulesAreRefusedNamingTheField() {
        let cases = [
            (#"{"pickup_days":["odd"]}"#, "eligibility.pickup_days"),
            (#"{"pickup_days":["odd","even","odd","even","odd","even","sometimes"]}"#, "eligibility.pickup_days"),
            (#"{"pickup_days":"taiwan"}"#, "eligibility.pickup_days"),
            (#"{"age":{"min":-1}}"#, "eligibility.age.min"),
            (#"{"age":{"min":70,"max":60}}"#, "eligibility.age.max"),
            (#"{"age":{"least":1}}"#, "eligibility.age.least"),
            (#"{"utc_offset_minutes":900}"#, "eligibility.utc_offset_minutes"),
            (#"{"series":"x"}"#, "eligibility.series"),
        ]
        for (json, field) in cases {
            do {
                let fields = try Fields.parse(Array("{\"eligibility\":\(json)}".utf8))
                _ = try EligibilityRules.decode(try #require(try fields.object("eligibility")))
                Issue.record("\(json) passed")
            } catch let problem as Problem {
                #expect(problem.code == "invalid_field" && problem.detail.hasPrefix(field + ":"), "\(json): \(problem.detail)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test func anAgeRuleNeedsResidentIDs() throws {
        let body = #"{"id":"c","name":"C","id_scheme":"tw-national","per_citizen_limit":1,"opens_at":"2030-01-01T00:00:00Z","#
            + #""closes_at":"2030-02-01T00:00:00Z","eligibility":{"age":{"min":60}}}"#
        #expect(throws: Problem.invalidField("eligibility.age", "needs id_scheme cn-resident (its ids carry the birth date)")) {
            try Campaign.decode(Fields.parse(Array(body.utf8)))
        }
        let parity = body.replacingOccurrences(of: #"{"age":{"min":60}}"#, with: #"{"pickup_days":["odd","even","odd","even","odd","even","any"]}"#)
        #expect(try Campaign.decode(Fields.parse(Array(parity.utf8))).eligibility.parityDays == EligibilityRules.taiwanParityDays)
    }

    @Test func factsRoundTripAndRefuseBadText() throws {
        let resident = EligibilityFacts(normalizedID: Self.resident("19700108", serial: 123), scheme: .cnResident)
        #expect(resident.text == "1|19700108")
        #expect(EligibilityFacts(text: resident.text) == resident)
        let tw = EligibilityFacts(normalizedID: "A123456787", scheme: .twNational)
        #expect(tw.text == "7|" && EligibilityFacts(text: "7|") == tw)
        #expect(EligibilityFacts(normalizedID: "ABC", scheme: .any).text == "|")
        for bad in ["", "7", "77|", "x|", "7|1970010", "7|19700230", "7|1970013a", "7|19700108|"] {
            #expect(EligibilityFacts(text: bad) == nil, "\(bad)")
        }
        // The rules read the same from facts as from the id.
        let rules = EligibilityRules(parityDays: EligibilityRules.taiwanParityDays, ageRange: 60...120, utcOffsetMinutes: 480)!
        for day in 0..<7 {
            #expect(rules.refusal(resident, slotStartsAtMillis: Self.slot(day: day))
                == rules.refusal(normalizedID: Self.resident("19700108", serial: 123), scheme: .cnResident,
                                 slotStartsAtMillis: Self.slot(day: day)))
        }
    }
}
