@testable import AllotServer
import Foundation
import SQLiteStore
import Testing

/// Files made by an older Allot open in this one with their rows intact.
@Suite struct SchemaTests {
    @Test func aFileWithTheOldStatusCheckIsRewrittenWithItsRowsKept() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("allot-schema-\(UUID()).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        do {
            let old = try SQLiteDatabase(path: path)
            try old.execute("""
                CREATE TABLE reservations (
                  id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, site_id TEXT NOT NULL, slot_id TEXT NOT NULL,
                  status TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled', 'redeemed')),
                  code TEXT NOT NULL, citizen_key TEXT NOT NULL,
                  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX reservations_by_campaign ON reservations (campaign_id, id);
                INSERT INTO reservations VALUES ('r1', 'c1', 'hall', 's1', 'confirmed', 'CODE', 'key1', 1, 2);
                INSERT INTO reservations VALUES ('r2', 'c1', 'hall', 's1', 'redeemed', 'CODF', 'key2', 3, 4);
                """)
        }
        let database = try Schema.open(path: path)
        let definition = try database.statement("SELECT sql FROM sqlite_master WHERE name = 'reservations'").rows { $0.text(0) }
        #expect(definition.first?.contains("status IN (") == false)
        let rows = try database.statement("SELECT id, status, code, updated_at FROM reservations ORDER BY id")
            .rows { "\($0.text(0)) \($0.text(1)) \($0.text(2)) \($0.int(3))" }
        #expect(rows == ["r1 confirmed CODE 2", "r2 redeemed CODF 4"])
        #expect(try database.statement("SELECT name FROM sqlite_master WHERE name = 'reservations_by_campaign'").rows { $0.text(0) }.count == 1)
        // The check still refuses a status that is none of the three.
        #expect(throws: SQLiteError.self) {
            try database.execute("INSERT INTO reservations VALUES ('r3', 'c1', 'hall', 's1', 'lost', 'C', 'k', 1, 1)")
        }
        // Opening again changes nothing.
        _ = try Schema.open(path: path)
    }
}
