import Foundation
import Testing

/// Bad input gets its contract error, as problem+json, and changes nothing.
@Suite(.serialized) struct BadInputTests {
    @Test func everyMalformedRequestGetsItsErrorAndChangesNothing() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("b1", scheme: "tw-national", limit: 1, slots: 1, capacity: 10)
        let client = stack.client()
        let path = "/v1/campaigns/b1/reservations"
        let cases: [(String, String?, [String: String], Int, String)] = [
            (path, "not json", [:], 400, "invalid_json"),
            (path, "[1,2]", [:], 400, "invalid_json"),
            (path, #"{"citizen_id":"A123456789"}"#, [:], 400, "invalid_field"),
            (path, #"{"citizen_id":123,"slot_id":"s0"}"#, [:], 400, "invalid_field"),
            (path, #"{"citizen_id":"A123456789","slot_id":"S 0"}"#, [:], 400, "invalid_field"),
            (path, #"{"citizen_id":"A123456788","slot_id":"s0"}"#, [:], 400, "invalid_citizen_id"),
            (path, #"{"citizen_id":"A123456789","slot_id":"nope"}"#, [:], 404, "not_found"),
            ("/v1/campaigns/nope/reservations", #"{"citizen_id":"A123456789","slot_id":"s0"}"#, [:], 404, "not_found"),
            (path, #"{"citizen_id":"\#(String(repeating: "A", count: 20_000))","slot_id":"s0"}"#, [:], 413, "body_too_large"),
            (path, String(repeating: "[", count: 5_000), [:], 400, "invalid_json"),
            (path, #"{"citizen_id":"A123456789","slot_id":"s0"}"#, ["Idempotency-Key": String(repeating: "k", count: 129)], 400, "invalid_field"),
            ("/v1/admin/campaigns/b1/stats", nil, [:], 401, "unauthorized"),
            ("/v1/admin/campaigns/b1/stats", nil, ["Authorization": "Bearer wrong"], 401, "unauthorized"),
            ("/v1/nowhere", nil, [:], 404, "not_found"),
        ]
        for (target, body, headers, status, code) in cases {
            let response = try client.request(body == nil ? "GET" : "POST", target, body: body, headers: headers)
            #expect(response.status == status, "\(target) \(body?.prefix(40) ?? "")")
            #expect(response.code == code, "\(target) \(body?.prefix(40) ?? "")")
            #expect(response.header("Content-Type") == "application/problem+json")
        }
        // Invalid UTF-8 inside a string.
        let raw = Array("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\n".utf8)
            + Array(#"{"citizen_id":""#.utf8) + [0xFF, 0xFE] + Array(#"","slot_id":"s0"}  "#.utf8)
        #expect(try client.raw(raw).code == "invalid_json")

        // Admin bodies are checked too, field by field.
        let badCampaign = try stack.admin("POST", "/v1/admin/campaigns", #"{"id":"Bad Id","name":"x","id_scheme":"any","per_citizen_limit":1,"opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"}"#)
        #expect(badCampaign.code == "invalid_field")
        #expect((badCampaign.json["detail"] as? String)?.hasPrefix("id:") == true)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/b1/slots", #"{"slots":[{"id":"s9","site_id":"nowhere","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":1}]}"#).code == "invalid_field")
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/b1/slots/s0", #"{"capacity":-5}"#).code == "invalid_field")
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/nope", #"{"status":"open"}"#).code == "not_found")

        // Nothing changed.
        let stats = try stack.stats("b1")
        #expect(stats["confirmed"] as? Int == 0)
        #expect(stats["remaining"] as? Int == 10)
        #expect(stats["capacity"] as? Int == 10)
        #expect(try stack.sqlite().statement("SELECT COUNT(*) FROM reservations").rows { $0.int(0) } == [0])

        // A garbage request line closes that connection; the server serves on.
        let garbage = HTTPClient(port: stack.port)
        _ = try? garbage.raw(Array("\u{01}\u{02} GARBAGE\r\n\r\n".utf8))
        #expect(try stack.client().get("/healthz").status == 200)
    }

    @Test func unknownCampaignsLeaveNoTraceInRedis() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("real")
        let client = stack.client()
        for index in 0..<300 {
            let response = try stack.reserve(client, campaign: "ghost-\(index)", citizen: "x", slot: "s0")
            #expect(response.code == "not_found")
        }
        // Invalid attempts on a real campaign are counted (each loop flushes
        // its counts every 250 ms); once they are, the ghosts' would be too.
        _ = try stack.reserve(client, campaign: "real", citizen: "x", slot: "nope")
        #expect(try waitUntil { (try stack.stats("real")["rejected"] as? [String: Int])?["invalid"] == 1 })
        Thread.sleep(forTimeInterval: 0.3)  // one more flush on every loop
        let ghosts = try stack.redis.command(["KEYS", "{c:ghost-*"]).elements ?? []
        #expect(ghosts.isEmpty)
    }
}
