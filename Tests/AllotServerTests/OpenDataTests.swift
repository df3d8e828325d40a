@testable import AllotServer
import EventHTTP
import Foundation
import Testing

/// The open availability data against a live server: the places, the
/// validators (ETag, 304), the caching headers, RFC 4180 quoting.
@Suite(.serialized) struct OpenDataTests {
    @Test func availabilityFollowsTheBookingsWithValidators() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("od", slots: 2, capacity: 5)
        let client = stack.client()
        let first = try client.get("/open/v1/campaigns/od/availability.json")
        #expect(first.status == 200)
        #expect(first.header("Content-Type") == "application/json; charset=utf-8")
        #expect(first.header("Cache-Control") == "public, max-age=1")
        #expect(first.header("Access-Control-Allow-Origin") == "*")
        #expect(first.header("Last-Modified")?.hasSuffix(" GMT") == true)
        let etag = try #require(first.header("ETag"))
        #expect(etag.hasPrefix("W/\"json-"))
        #expect(first.json["campaign_id"] as? String == "od")
        #expect(first.json["status"] as? String == "open")
        #expect(first.json["refresh_seconds"] as? Int == 1)
        #expect((first.json["as_of"] as? String)?.hasSuffix("Z") == true)
        #expect(remaining(first) == ["s0": 5, "s1": 5])

        // The same data: 304, no body, the same validators.
        let again = try client.get("/open/v1/campaigns/od/availability.json", headers: ["If-None-Match": "\"x\", \(etag)"])
        #expect(again.status == 304)
        #expect(again.body.isEmpty)
        #expect(again.header("ETag") == etag)
        #expect(again.header("Content-Length") == nil)
        // A strong copy of the tag matches too (weak comparison), and `*`.
        #expect(try client.get("/open/v1/campaigns/od/availability.json", headers: ["If-None-Match": String(etag.dropFirst(2))]).status == 304)
        #expect(try client.get("/open/v1/campaigns/od/availability.json", headers: ["If-None-Match": "*"]).status == 304)

        // A booking: within a refresh the data and its tag change, and the
        // old tag gets the whole answer.
        #expect(try stack.reserve(client, campaign: "od", citizen: "ann", slot: "s1").status == 201)
        var latest = first
        #expect(try waitUntil {
            latest = try HTTPClient(port: stack.port).get("/open/v1/campaigns/od/availability.json")
            return remaining(latest) == ["s0": 5, "s1": 4]
        })
        #expect(latest.header("ETag") != etag)
        let stale = try client.get("/open/v1/campaigns/od/availability.json", headers: ["If-None-Match": etag])
        #expect(stale.status == 200)
        #expect(remaining(stale) == ["s0": 5, "s1": 4])
    }

    /// A poller that takes gzip gets the same data gzipped, with the same
    /// validators; one that does not, or refuses it, gets it plain.
    @Test func gzipForThoseWhoTakeIt() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("oz", slots: 40, capacity: 9)
        let client = stack.client()
        let plain = try client.get("/open/v1/campaigns/oz/availability.json")
        let packed = try client.get("/open/v1/campaigns/oz/availability.json", headers: ["Accept-Encoding": "gzip, deflate"])
        #expect(plain.header("Content-Encoding") == nil)
        #expect(plain.header("Vary") == "Accept-Encoding")
        #expect(packed.header("Content-Encoding") == "gzip")
        #expect(packed.header("Vary") == "Accept-Encoding")
        #expect(packed.header("ETag") == plain.header("ETag"))
        #expect(packed.body.count < plain.body.count / 4)
        // The plain body, gzipped (GzipTests checks that gzip -d reads it back).
        #expect(packed.body == Gzip.compress(plain.body))
        let refused = try client.get("/open/v1/campaigns/oz/availability.json", headers: ["Accept-Encoding": "gzip;q=0"])
        #expect(refused.header("Content-Encoding") == nil)
        #expect(refused.body == plain.body)
    }

    @Test func csvIsRFC4180() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("oc", slots: 1, capacity: 3)
        let renamed = try stack.admin("PUT", "/v1/admin/campaigns/oc/sites",
                                      #"{"sites":[{"id":"hall","name":"Hall \"B\", east","address":"1 Road"}]}"#)
        #expect(renamed.status == 200)
        let csv = try stack.client().get("/open/v1/campaigns/oc/availability.csv")
        #expect(csv.status == 200)
        #expect(csv.header("Content-Type") == "text/csv; charset=utf-8; header=present")
        #expect(csv.header("ETag")?.hasPrefix("W/\"csv-") == true)
        let lines = csv.text.components(separatedBy: "\r\n")
        #expect(lines.count == 3 && lines[2].isEmpty, "\(lines)")
        #expect(lines[0] == "campaign_id,site_id,site_name,site_address,slot_id,starts_at,ends_at,capacity,remaining,as_of")
        #expect(lines[1].hasPrefix(#"oc,hall,"Hall ""B"", east",1 Road,s0,2030-01-01T09:00:00Z,2030-01-01T10:00:00Z,3,3,"#))
    }

    @Test func draftsAndUnknownCampaignsAreNotFound() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let created = try stack.admin("POST", "/v1/admin/campaigns", #"{"id":"hidden","name":"Hidden","status":"draft","id_scheme":"any","per_citizen_limit":1,"opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"}"#)
        #expect(created.status == 201)
        let client = stack.client()
        #expect(try client.get("/open/v1/campaigns/hidden/availability.json").code == "not_found")
        #expect(try client.get("/open/v1/campaigns/nobody/availability.csv").code == "not_found")
        #expect(try client.request("POST", "/open/v1/campaigns/hidden/availability.json").status == 405)
    }

    @Test func ifNoneMatchComparesWeakly() {
        let tag = #"W/"json-00ff""#
        #expect(OpenData.matches(tag, tag))
        #expect(OpenData.matches(#""json-00ff""#, tag))
        #expect(OpenData.matches(#""a", W/"json-00ff""#, tag))
        #expect(OpenData.matches("*", tag))
        #expect(!OpenData.matches(#"W/"json-00fe""#, tag))
        #expect(!OpenData.matches(#"W/"csv-00ff""#, tag))
        #expect(!OpenData.matches("", tag))
    }

    private func remaining(_ response: HTTPClient.Response) -> [String: Int] {
        var places: [String: Int] = [:]
        for site in response.json["sites"] as? [[String: Any]] ?? [] {
            for slot in site["slots"] as? [[String: Any]] ?? [] {
                if let id = slot["id"] as? String, let left = slot["remaining"] as? Int { places[id] = left }
            }
        }
        return places
    }
}
