@testable import AllotDomain
import Testing

@Suite struct JSONParserTests {
    func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesDocuments() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null], "b": "x\"\u00e9\ud83d\ude00"} "#)
        #expect(value["a"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("x\"é😀"))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "1e", "nan", "Infinity", "0x10", "tru",
        "\"unterminated", "\"\\x\"", "\"\\ud800\"", "{} {}", "\"tab\there\"", "1e999",
    ])
    func rejectsInvalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test func refusesDeepNestingWithoutRecursingFurther() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let allowed = String(repeating: "[", count: JSONParser.depthMax) + String(repeating: "]", count: JSONParser.depthMax)
        #expect((try? parse(allowed)) != nil)
    }

    @Test func writerEscapesAndParsesBack() throws {
        var json = JSONWriter()
        json.beginObject()
        json.field("s", "quote\" back\\ nl\n ctl\u{01} é")
        json.field("n", -42)
        json.key("list"); json.beginArray(); json.number(1.5); json.bool(true); json.null(); json.endArray()
        json.endObject()
        let value = try JSONParser.parse(json.bytes)
        #expect(value["s"] == .string("quote\" back\\ nl\n ctl\u{01} é"))
        #expect(value["n"] == .number(-42))
        #expect(value["list"] == .array([.number(1.5), .bool(true), .null]))
    }
}

@Suite struct ProblemAndDecodingTests {
    @Test func problemBodyIsRFC9457WithCode() throws {
        let value = try JSONParser.parse(Problem.slotFull("s-0900").body)
        #expect(value["type"] == .string("/problems/slot-full"))
        #expect(value["title"] == .string("Slot is full"))
        #expect(value["status"] == .number(409))
        #expect(value["code"] == .string("slot_full"))
        #expect(value["detail"] == .string("slot s-0900 has no places left"))
    }

    @Test func reserveRequestErrorsNameTheField() {
        func code(_ body: String) -> String? {
            do { _ = try ReserveRequest.decode(Array(body.utf8)); return nil } catch { return "\(error.code) \(error.detail)" }
        }
        #expect(code("not json")?.hasPrefix("invalid_json") == true)
        #expect(code("[]")?.hasPrefix("invalid_json") == true)
        #expect(code(#"{"slot_id":"s1"}"#) == "invalid_field citizen_id: is required")
        #expect(code(#"{"citizen_id":5,"slot_id":"s1"}"#) == "invalid_field citizen_id: must be a string")
        #expect(code(#"{"citizen_id":"x","slot_id":"S 1"}"#)?.hasPrefix("invalid_field slot_id") == true)
        #expect(code(#"{"citizen_id":"x","slot_id":"s1","extra":1}"#) == "invalid_field extra: is not a known field")
        #expect(code(#"{"citizen_id":"x","slot_id":"s1"}"#) == nil)
    }

    @Test func campaignDecodingValidates() throws {
        let good = #"{"id":"masks-w12","name":"Masks","id_scheme":"cn-resident","per_citizen_limit":1,"opens_at":"2026-03-01T00:00:00Z","closes_at":"2026-03-08T00:00:00Z"}"#
        let campaign = try Campaign.decode(Fields.parse(Array(good.utf8)))
        #expect(campaign.status == .draft)
        #expect(campaign.opensAtMillis == 1_772_323_200_000)
        let reversed = good.replacingOccurrences(of: "2026-03-08", with: "2026-02-08")
        #expect(throws: Problem.invalidField("closes_at", "must be after opens_at")) {
            try Campaign.decode(Fields.parse(Array(reversed.utf8)))
        }
        let badLimit = good.replacingOccurrences(of: "\"per_citizen_limit\":1", with: "\"per_citizen_limit\":1.5")
        #expect(throws: Problem.self) { try Campaign.decode(Fields.parse(Array(badLimit.utf8))) }
        let huge = good.replacingOccurrences(of: "\"per_citizen_limit\":1", with: "\"per_citizen_limit\":1e300")
        #expect(throws: Problem.self) { try Campaign.decode(Fields.parse(Array(huge.utf8))) }
    }

    @Test func slotListRefusesDuplicatesAndBadWindows() {
        let duplicate = #"{"slots":[{"id":"a","site_id":"p","starts_at":"2026-03-01T09:00:00Z","ends_at":"2026-03-01T10:00:00Z","capacity":5},{"id":"a","site_id":"p","starts_at":"2026-03-01T09:00:00Z","ends_at":"2026-03-01T10:00:00Z","capacity":5}]}"#
        #expect(throws: Problem.self) { try Slot.decodeList(Fields.parse(Array(duplicate.utf8))) }
        let backwards = #"{"slots":[{"id":"a","site_id":"p","starts_at":"2026-03-01T11:00:00Z","ends_at":"2026-03-01T10:00:00Z","capacity":5}]}"#
        #expect(throws: Problem.invalidField("slots[0].ends_at", "must be after starts_at")) {
            try Slot.decodeList(Fields.parse(Array(backwards.utf8)))
        }
        let negative = #"{"slots":[{"id":"a","site_id":"p","starts_at":"2026-03-01T09:00:00Z","ends_at":"2026-03-01T10:00:00Z","capacity":-1}]}"#
        #expect(throws: Problem.self) { try Slot.decodeList(Fields.parse(Array(negative.utf8))) }
    }

    @Test func rateLimitsDecodeAndRefuseNonsense() throws {
        let limits = try RateLimits.decode(Fields.parse(Array(#"{"global":{"rate":5000,"burst":10000},"citizen":{"rate":0.2,"burst":2}}"#.utf8)))
        #expect(limits.global == BucketPolicy(rate: 5000, burst: 10000))
        #expect(limits.ip == nil)
        #expect(limits.citizen == BucketPolicy(rate: 0.2, burst: 2))
        #expect(throws: Problem.self) { try RateLimits.decode(Fields.parse(Array(#"{"ip":{"rate":0,"burst":2}}"#.utf8))) }
        #expect(throws: Problem.self) { try RateLimits.decode(Fields.parse(Array(#"{"ipp":{"rate":1,"burst":2}}"#.utf8))) }
    }
}

@Suite struct TimestampTests {
    @Test func formatsAndParsesBack() {
        for millis: Int64 in [0, 951_782_400_000, 1_772_323_201_234, 4_102_444_799_999] {
            let text = Timestamp.format(millis: millis)
            #expect(Timestamp.parse(text) == millis, "\(text)")
        }
        #expect(Timestamp.format(millis: 1_772_323_201_234) == "2026-03-01T00:00:01.234Z")
        #expect(Timestamp.format(millis: 1_772_323_200_000, alwaysFraction: false) == "2026-03-01T00:00:00Z")
    }

    @Test func parsesOffsetsAndFractions() {
        #expect(Timestamp.parse("2026-03-01T08:00:00+08:00") == 1_772_323_200_000)
        #expect(Timestamp.parse("2026-03-01T00:00:00.5Z") == 1_772_323_200_500)
        #expect(Timestamp.parse("2026-03-01T00:00:00.123456Z") == 1_772_323_200_123)
    }

    @Test(arguments: ["2026-03-01", "2026-02-30T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T00:00:00",
                      "2026-03-01T00:00:00+0800", "1969-12-31T23:59:59Z", "2026-03-01 00:00:00Z", "2026-03-01T00:00:00.Z"])
    func rejects(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }
}

/// The reservation body's fast path (ReserveRequest.decodeCommonShape) says
/// exactly what the full parser says, or leaves the body to it.
@Suite struct ReserveRequestFastPathTests {
    func full(_ body: [UInt8]) -> ReserveRequest? {
        guard let fields = try? Fields.parse(body), (try? fields.allowOnly(["citizen_id", "slot_id"])) != nil,
              let citizen = try? fields.string("citizen_id", bytesMax: ReserveRequest.citizenIDBytesMax),
              let slot = try? fields.identifier("slot_id") else { return nil }
        return ReserveRequest(citizenID: citizen, slotID: slot)
    }

    @Test func theCommonShapeIsReadWithoutTheParser() {
        for body in [#"{"citizen_id":"11010519491231002X","slot_id":"s1"}"#,
                     #"{ "slot_id" : "hall-2" ,"citizen_id":"A123456789" }"#,
                     "{\n\t\"citizen_id\": \"x\",\r\n \"slot_id\": \"s-9\"\n}\n"] {
            let fast = ReserveRequest.decodeCommonShape(ArraySlice(body.utf8))
            #expect(fast != nil, "\(body)")
            #expect(fast == full(Array(body.utf8)))
        }
    }

    @Test func anythingElseIsLeftToTheFullParser() {
        for body in [#"{"citizen_id":"a\"b","slot_id":"s1"}"#, #"{"citizen_id":"ä","slot_id":"s1"}"#,
                     #"{"citizen_id":"","slot_id":"s1"}"#, #"{"citizen_id":"x","slot_id":"S1"}"#,
                     #"{"citizen_id":"x","slot_id":"s1","extra":1}"#, #"{"citizen_id":"x","citizen_id":"y"}"#,
                     #"{"citizen_id":"x","slot_id":"s1"} x"#, #"{"citizen_id":"x" "slot_id":"s1"}"#,
                     #"{"citizen_id":1,"slot_id":"s1"}"#, #"{"citizen_id":"x"}"#, "", "{", "[]",
                     #"{"citizen_id":"\#(String(repeating: "7", count: 129))","slot_id":"s1"}"#] {
            #expect(ReserveRequest.decodeCommonShape(ArraySlice(body.utf8)) == nil, "\(body)")
        }
    }

    /// Random bodies near the common shape: whenever the fast path answers,
    /// the full parser gives the same request.
    @Test func agreesWithTheFullParserOnRandomBodies() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["{", "}", ",", ":", " ", "\"", "\\", "citizen_id", "slot_id", "s1", "x", "\"citizen_id\"",
                      "\"slot_id\"", "\"s1\"", "\"A123\"", "\n", "é", "\u{1}", "1"]
        var accepted = 0
        for _ in 0..<20_000 {
            var body = ""
            if Bool.random(using: &generator) {
                let a = #""citizen_id":"\#(["x", "A1", "", "a b"].randomElement(using: &generator)!)""#
                let b = #""slot_id":"\#(["s1", "S1", "s-2", ""].randomElement(using: &generator)!)""#
                body = Bool.random(using: &generator) ? "{\(a),\(b)}" : "{ \(b) , \(a) }"
                if Int.random(in: 0..<4, using: &generator) == 0 {
                    body.insert(contentsOf: pieces.randomElement(using: &generator)!,
                                at: body.index(body.startIndex, offsetBy: Int.random(in: 0...body.count, using: &generator)))
                }
            } else {
                for _ in 0..<Int.random(in: 1...12, using: &generator) { body += pieces.randomElement(using: &generator)! }
            }
            let bytes = Array(body.utf8)
            if let fast = ReserveRequest.decodeCommonShape(bytes[...]) {
                accepted += 1
                #expect(fast == full(bytes), "\(body)")
            }
        }
        #expect(accepted > 1_000)
    }
}

@Suite struct JSONWriterTests {
    /// Commas stay right at every level, in the word of flags and past it.
    @Test func nestsDeeperThanItsInlineFlags() {
        for depth in [1, 2, 62, 63, 64, 65, 130] {
            var json = JSONWriter()
            for _ in 0..<depth { json.beginArray(); json.number(1) }
            for _ in 0..<depth { json.endArray(); json.number(2) }
            var expected = ""
            for _ in 0..<depth { expected += expected.isEmpty || expected.hasSuffix("[") ? "[1" : ",[1" }
            for _ in 0..<depth { expected += "],2" }
            #expect(json.text == expected, "depth \(depth)")
        }
    }

    @Test func aLevelOpenedAgainStartsWithoutAComma() {
        var json = JSONWriter()
        json.beginArray()
        for _ in 0..<2 { json.beginArray(); json.number(1); json.endArray() }
        json.endArray()
        #expect(json.text == "[[1],[1]]")
    }

    @Test func escapesOnlyWhatJSONNeedsEscaped() {
        var json = JSONWriter()
        json.beginArray()
        json.string("plain é ☃")
        json.string("q\"b\\n\nr\rt\t\u{01}\u{1F}")
        // Each on its own too: one byte to escape sends a value to the slow path.
        json.string("only\"quote")
        json.string("only\\backslash")
        json.string("only\u{7}bell")
        json.number(-42)
        json.endArray()
        #expect(json.text == #"["plain é ☃","q\"b\\n\nr\rt\t\u0001\u001f","only\"quote","only\\backslash","only\u0007bell",-42]"#)
    }

    @Test func writesTimestampFieldsAsFormatDoes() {
        var json = JSONWriter()
        json.beginObject()
        json.field("a", 1)
        json.field("at", timestampMillis: 1_772_323_201_234)
        json.field("b", "x")
        json.endObject()
        #expect(json.text == #"{"a":1,"at":"\#(Timestamp.format(millis: 1_772_323_201_234))","b":"x"}"#)
        #expect(Timestamp.format(millis: 1_772_323_201_234) == "2026-03-01T00:00:01.234Z")
    }
}
