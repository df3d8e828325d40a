import AllotDomain
import SQLiteStore

/// A campaign's reservations read from SQLite in id order, a page at a
/// time, and written as CSV (RFC 4180, the columns of API.md) or JSON
/// lines. Used by the HTTP export and by `allot export`.
struct ReservationRows {
    enum Format: String, Sendable, CaseIterable {
        case csv, jsonl
    }

    static let csvHeader = "reservation_id,campaign_id,site_id,slot_id,status,code,citizen_key,created_at,updated_at\r\n"
    static let rowsPerPage = 1_000
    private let page: SQLiteStatement
    private let campaign: String
    private let format: Format
    private var after = ""
    private var started = false

    init(database: SQLiteDatabase, campaign: String, format: Format) throws {
        page = try database.statement("""
            SELECT id, campaign_id, site_id, slot_id, status, code, citizen_key, created_at, updated_at
            FROM reservations WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?
            """)
        self.campaign = campaign
        self.format = format
    }

    static func campaignExists(_ campaign: String, in database: SQLiteDatabase) throws -> Bool {
        try !database.statement("SELECT 1 FROM campaigns WHERE id = ?").rows([.text(campaign)]) { _ in true }.isEmpty
    }

    /// The next page as text (the CSV header leads the first), or nil at the end.
    mutating func nextPage() throws -> String? {
        var text = !started && format == .csv ? Self.csvHeader : ""
        started = true
        var last: String?
        try page.forEachRow([.text(campaign), .text(after), .integer(Int64(Self.rowsPerPage))]) { row in
            let fields = (0..<7).map { row.text(Int32($0)) }
            let created = Timestamp.format(millis: row.int(7)), updated = Timestamp.format(millis: row.int(8))
            text += format == .csv ? Self.csvLine(fields, created, updated) : Self.jsonLine(fields, created, updated)
            last = fields[0]
        }
        guard let last else { return text.isEmpty ? nil : text }
        after = last
        return text
    }

    private static func csvLine(_ fields: [String], _ created: String, _ updated: String) -> String {
        (fields + [created, updated]).map(csvField).joined(separator: ",") + "\r\n"
    }

    private static func jsonLine(_ fields: [String], _ created: String, _ updated: String) -> String {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        for (name, value) in zip(["reservation_id", "campaign_id", "site_id", "slot_id", "status", "code", "citizen_key"] as [StaticString], fields) {
            json.field(name, value)
        }
        json.field("created_at", created)
        json.field("updated_at", updated)
        json.endObject()
        return json.text + "\n"
    }

    /// RFC 4180: quote a field holding a comma, quote or line break.
    static func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// `allot export`: a campaign's reservations from SQLite to a file or
/// standard output, for operators without HTTP access.
public enum ReservationExporter {
    public enum Failure: Error, CustomStringConvertible {
        case unknownCampaign(String)
        case badFormat(String)
        public var description: String {
            switch self {
            case .unknownCampaign(let id): "no campaign \(id) in the database"
            case .badFormat(let format): "unknown format \(format) (csv or jsonl)"
            }
        }
    }

    /// Writes every row through `write`, a page at a time; returns the rows.
    public static func export(databasePath: String, campaign: String, format: String,
                              write: (String) throws -> Void) throws {
        guard let format = ReservationRows.Format(rawValue: format) else { throw Failure.badFormat(format) }
        let database = try SQLiteDatabase(path: databasePath)
        guard try ReservationRows.campaignExists(campaign, in: database) else { throw Failure.unknownCampaign(campaign) }
        var rows = try ReservationRows(database: database, campaign: campaign, format: format)
        while let page = try rows.nextPage() { try write(page) }
    }
}
