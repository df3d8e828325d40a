import RedisClient

/// The fields of a campaign stream's entries, as reserve.lua and
/// transition.lua write them (`XADD … id <rid> r <record> [a <actor>]`).
enum StreamEntryFields {
    static let id = Array("id".utf8)
    /// The reservation's record after the change (ReservationRecord).
    static let record = Array("r".utf8)
    /// Who made the change; absent: the citizen.
    static let actor = Array("a".utf8)
}

/// An XREADGROUP reply: stream → entries in order.
struct StreamBatch {
    struct Entry {
        let streamID: String
        /// The entry's fields, name and value alternating.
        let fields: [RedisReply]

        /// The value of field `name` (given as bytes: compared without
        /// making a String per field, as this runs for every row).
        func field(_ name: [UInt8]) -> String? {
            var index = 0
            while index + 1 < fields.count {
                if case .string(let bytes) = fields[index], bytes == name { return fields[index + 1].text }
                index += 2
            }
            return nil
        }
    }

    var entries: [String: [Entry]] = [:]
    var count = 0

    /// When the oldest entry of the batch was added (its id's milliseconds).
    var oldestMillis: Int64? {
        entries.values.compactMap { $0.first.flatMap { StreamID.millis($0.streamID) } }.min()
    }

    init(_ reply: RedisReply) {
        for stream in reply.elements ?? [] {
            guard let parts = stream.elements, parts.count == 2, let name = parts[0].text else { continue }
            var list: [Entry] = []
            for entry in parts[1].elements ?? [] {
                guard let pair = entry.elements, pair.count == 2, let id = pair[0].text else { continue }
                list.append(Entry(streamID: id, fields: pair[1].elements ?? []))
            }
            count += list.count
            entries[name] = list
        }
    }
}

