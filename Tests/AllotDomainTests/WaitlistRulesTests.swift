import AllotDomain
import Testing

/// Issue 14's waitlists as pure rules: the setting, the request, the record.
struct WaitlistRulesTests {
    @Test func aWaitlistIsForFirstComeCampaignsOutsideASeries() throws {
        let made = try HoldRulesTests.campaign(#","waitlist":{"offer_seconds":600}"#)
        #expect(made.waitlist == WaitlistSettings(offerSeconds: 600))
        var json = JSONWriter()
        made.write(to: &json, nowMillis: 0)
        #expect(json.text.contains(#""waitlist":{"offer_seconds":600}"#))
        for bad in [#","waitlist":{"offer_seconds":0}"#, #","waitlist":{}"#, #","waitlist":{"offer_seconds":60,"x":1}"#,
                    #","waitlist":{"offer_seconds":60},"series":{"id":"s","limit":2,"window_days":7}"#,
                    #","waitlist":{"offer_seconds":60},"allocation":"lottery","lottery":{"public_value_source":"x"}"#] {
            #expect(throws: Problem.self, "\(bad)") { try HoldRulesTests.campaign(bad) }
        }
        // Spread over buckets: a line per bucket.
        #expect(try HoldRulesTests.campaign(#","waitlist":{"offer_seconds":60},"buckets":4"#).buckets.count == 4)
        // Its rules stay as made: the lines were checked against them.
        #expect(throws: Problem.self) {
            try made.patched(with: Fields.parse(Array(#"{"eligibility":{"pickup_days":["odd","even","odd","even","odd","even","any"]}}"#.utf8)))
        }
        #expect(try made.patched(with: Fields.parse(Array(#"{"name":"Renamed"}"#.utf8))).name == "Renamed")
    }

    @Test func aRequestNamesASlotOrASiteNotBoth() throws {
        func decode(_ body: String) throws -> WaitlistRequest { try WaitlistRequest.decode(Array(body.utf8)[...]) }
        #expect(try decode(#"{"citizen_id":"a","slot_id":"s0"}"#).target == .slot("s0"))
        #expect(try decode(#"{"citizen_id":"a","site_id":"hall"}"#).target == .site("hall"))
        for bad in [#"{"citizen_id":"a"}"#, #"{"citizen_id":"a","slot_id":"s0","site_id":"hall"}"#, #"{"slot_id":"s0"}"#,
                    #"{"citizen_id":"a","slot_id":"bad id"}"#, #"{"citizen_id":"a","slot_id":"s0","x":1}"#] {
            #expect(throws: Problem.self, "\(bad)") { try decode(bad) }
        }
    }

    @Test func aRecordReadsAsWaitlistLuaWritesIt() {
        let record = WaitlistRecord("waiting|site:hall|key123|1000|01ABC|K7Q2-9XMD|1000")
        #expect(record?.target == .site("hall") && record?.status == .waiting && record?.joinedAtMillis == 1000)
        #expect(WaitlistRecord("offered|s0|key|1|rid|code|2")?.target == .slot("s0"))
        for bad in ["", "waiting|s0|key|1|rid|code", "maybe|s0|key|1|rid|code|2", "waiting|bad id|key|1|rid|code|2",
                    "waiting|s0||1|rid|code|2", "waiting|s0|key|x|rid|code|2"] {
            #expect(WaitlistRecord(bad) == nil, "\(bad)")
        }
        let entry = WaitlistEntry(id: "w1", campaignID: "c", record: WaitlistRecord("offered|s0|key|1|rid9|code|2")!, position: 3)
        // Offered: its reservation, no place in line; never the citizen's key.
        let json = String(decoding: entry.json, as: UTF8.self)
        #expect(json.contains(#""reservation_id":"rid9""#) && !json.contains("position") && !json.contains("key"))
    }
}
