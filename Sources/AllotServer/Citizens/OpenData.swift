import AllotDomain
import EventHTTP

/// The open availability data (README, Open data): per site and slot, the
/// places left and when that was read (`as_of`), as JSON or CSV (RFC 4180),
/// for anyone to poll (a map, a chat bot, a journalist). Rendered once per
/// snapshot refresh with its validators; a poll whose `If-None-Match`
/// names the current ETag gets a 304 without a body.
enum OpenData {
    /// A rendering and the header lines of each answer with it, made
    /// once: a poll assembles no header (the commonest request of all).
    /// A class: a poll takes one reference to it, not one to each part.
    final class Rendered {
        let body: SharedBytes
        let headers: PreparedHeaders
        /// The same body gzipped, for the pollers that take it (most do:
        /// a 12 KB listing is about 500 bytes), with its headers.
        let gzipBody: SharedBytes?
        let gzipHeaders: PreparedHeaders
        /// A 304's: the validators, without the body's type.
        let notModifiedHeaders: PreparedHeaders
        let etag: String

        init(body: SharedBytes, headers: PreparedHeaders, gzipBody: SharedBytes?, gzipHeaders: PreparedHeaders,
             notModifiedHeaders: PreparedHeaders, etag: String) {
            self.body = body
            self.headers = headers
            self.gzipBody = gzipBody
            self.gzipHeaders = gzipHeaders
            self.notModifiedHeaders = notModifiedHeaders
            self.etag = etag
        }
    }

    static let csvHeader = "campaign_id,site_id,site_name,site_address,slot_id,starts_at,ends_at,capacity,remaining,as_of\r\n"

    /// The ETag is weak and covers the data, not `as_of`: two loops (or
    /// two refreshes) that read the same places give the same tag, so a
    /// poller is not sent a body that differs only in when it was read.
    /// `compress`: also gzip it (worth it for a rendering kept for a
    /// refresh, not for one made for a single answer).
    static func render(_ view: CampaignView, format: OpenDataFormat, asOfMillis: Int64, nowMillis: Int64,
                       maxAgeSeconds: Int, compress: Bool) -> Rendered {
        let status = view.campaign.effectiveStatus(nowMillis: nowMillis).rawValue
        let asOf = Timestamp.format(millis: asOfMillis, alwaysFraction: false)
        let body = switch format {
        case .json: json(view, status: status, asOf: asOf, refreshSeconds: maxAgeSeconds)
        case .csv: csv(view, asOf: asOf)
        }
        let etag = "W/\"\(format.rawValue)-\(contentHash(view, status: status))\""
        let headers = [
            ("ETag", etag),
            ("Vary", "Accept-Encoding"),
            ("Last-Modified", HTTPDate.format(epochSeconds: Int(asOfMillis / 1000))),
            ("Cache-Control", "public, max-age=\(maxAgeSeconds)"),
            // Open data: a page on any site may read it.
            ("Access-Control-Allow-Origin", "*"),
        ] + (format == .csv ? [("Content-Disposition", "inline; filename=\"\(view.campaign.id)-availability.csv\"")] : [])
        let typed = [("Content-Type", contentType(format))] + headers
        return Rendered(body: SharedBytes(body), headers: PreparedHeaders(typed),
                        gzipBody: compress ? Gzip.compress(body).map(SharedBytes.init) : nil,
                        gzipHeaders: PreparedHeaders(typed + [("Content-Encoding", "gzip")]),
                        notModifiedHeaders: PreparedHeaders(headers), etag: etag)
    }

    static func contentType(_ format: OpenDataFormat) -> String {
        switch format {
        case .json: Answer.jsonType
        case .csv: "text/csv; charset=utf-8; header=present"
        }
    }

    /// Answers a request with these `If-None-Match` and `Accept-Encoding`
    /// values.
    static func send(_ rendered: Rendered, to exchange: HTTPExchange, ifNoneMatch: String?, acceptEncoding: String?) {
        if let ifNoneMatch, matches(ifNoneMatch, rendered.etag) {
            return exchange.respondNotModified(prepared: rendered.notModifiedHeaders)
        }
        if let gzipped = rendered.gzipBody, let acceptEncoding, Gzip.isAccepted(by: acceptEncoding) {
            return exchange.respond(status: 200, prepared: rendered.gzipHeaders, sharedBody: gzipped)
        }
        exchange.respond(status: 200, prepared: rendered.headers, sharedBody: rendered.body)
    }

    /// `If-None-Match` compares weakly (RFC 9110, 13.1.2): `*`, or any tag in
    /// the list equal to ours with or without its `W/`. Read in place, at
    /// most 64 tags: a conditional poll is the commonest request of all.
    static func matches(_ ifNoneMatch: String, _ etag: String) -> Bool {
        let ours = etag.utf8.starts(with: "W/".utf8) ? etag.utf8.dropFirst(2) : etag.utf8[...]
        let list = ifNoneMatch.utf8
        var start = list.startIndex, tags = 0
        while tags < 64 {
            let end = list[start...].firstIndex(of: UInt8(ascii: ",")) ?? list.endIndex
            var tag = list[start..<end].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            while let last = tag.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { tag = tag.dropLast() }
            if tag.elementsEqual("*".utf8) { return true }
            if tag.starts(with: "W/".utf8) { tag = tag.dropFirst(2) }
            if tag.elementsEqual(ours) { return true }
            guard end < list.endIndex else { return false }
            start = list.index(after: end)
            tags += 1
        }
        return false
    }

    private static func json(_ view: CampaignView, status: String, asOf: String, refreshSeconds: Int) -> [UInt8] {
        var json = JSONWriter(capacity: 256 + 160 * view.slots.count + 128 * view.sites.count)
        json.beginObject()
        json.field("campaign_id", view.campaign.id)
        json.field("campaign_name", view.campaign.name)
        json.field("status", status)
        json.field("as_of", asOf)
        json.field("refresh_seconds", refreshSeconds)
        json.key("sites")
        json.beginArray()
        let slotsBySite = Dictionary(grouping: view.slots, by: \.siteID), remainingBySite = view.remainingBySite()
        for site in view.sites {
            let slots = slotsBySite[site.id] ?? []
            json.beginObject()
            json.field("id", site.id)
            json.field("name", site.name)
            json.field("address", site.address)
            json.field("remaining", remainingBySite[site.id] ?? 0)
            json.key("slots")
            json.beginArray()
            for slot in slots { slot.write(to: &json, remaining: view.remaining[slot.id] ?? 0, withSite: false) }
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return json.bytes
    }

    /// One row per slot, sites in id order and slots by start as in the
    /// JSON; CRLF line ends and quoting as RFC 4180 has them.
    private static func csv(_ view: CampaignView, asOf: String) -> [UInt8] {
        var text = csvHeader
        text.reserveCapacity(csvHeader.utf8.count + 160 * view.slots.count)
        let slotsBySite = Dictionary(grouping: view.slots, by: \.siteID)
        for site in view.sites {
            for slot in slotsBySite[site.id] ?? [] {
                let fields = [
                    view.campaign.id, site.id, site.name, site.address, slot.id,
                    Timestamp.format(millis: slot.startsAtMillis, alwaysFraction: false),
                    Timestamp.format(millis: slot.endsAtMillis, alwaysFraction: false),
                    String(slot.capacity), String(view.remaining[slot.id] ?? 0), asOf,
                ]
                text += fields.map(ReservationRows.csvField).joined(separator: ",") + "\r\n"
            }
        }
        return Array(text.utf8)
    }

    /// FNV-1a over what the body says but `as_of`.
    private static func contentHash(_ view: CampaignView, status: String) -> String {
        var hash = FNV1a()
        for text in [view.version, view.campaign.id, view.campaign.name, status] { hash.add(text) }
        for site in view.sites { for text in [site.id, site.name, site.address] { hash.add(text) } }
        for slot in view.slots {
            hash.add(slot.id)
            hash.add(slot.siteID)
            for number in [slot.startsAtMillis, slot.endsAtMillis, Int64(slot.capacity), Int64(view.remaining[slot.id] ?? 0)] {
                hash.add(number)
            }
        }
        let text = String(hash.value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}

/// 64-bit FNV-1a: a fast, stable hash for validators (not for secrets).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    /// A text and a separator, so ("ab", "c") and ("a", "bc") differ.
    mutating func add(_ text: String) {
        for byte in text.utf8 { add(byte: byte) }
        add(byte: 0xff)
    }

    mutating func add(_ number: Int64) {
        for shift in stride(from: 0, to: 64, by: 8) { add(byte: UInt8(truncatingIfNeeded: number >> shift)) }
    }
}
