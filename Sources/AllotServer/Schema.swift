import SQLiteStore

/// SQLite: the record of truth for configuration and, once persisted, for
/// reservations. WAL with synchronous=FULL: one fsync per committed batch.
enum Schema {
    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS campaigns (
          id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, id_scheme TEXT NOT NULL,
          per_citizen_limit INTEGER NOT NULL, opens_at INTEGER NOT NULL, closes_at INTEGER NOT NULL,
          rate_limits TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS sites (
          campaign_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL,
          PRIMARY KEY (campaign_id, id)) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS slots (
          campaign_id TEXT NOT NULL, id TEXT NOT NULL, site_id TEXT NOT NULL, starts_at INTEGER NOT NULL,
          ends_at INTEGER NOT NULL, capacity INTEGER NOT NULL CHECK (capacity >= 0),
          PRIMARY KEY (campaign_id, id)) WITHOUT ROWID
        """,
        // Time-ordered ids: WITHOUT ROWID keeps the rows in id order, and
        // each batch appends at the right edge of the b-tree.
        """
        CREATE TABLE IF NOT EXISTS reservations (
          id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, site_id TEXT NOT NULL, slot_id TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled', 'redeemed')),
          code TEXT NOT NULL, citizen_key TEXT NOT NULL,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS reservations_by_campaign ON reservations (campaign_id, id)",
    ]

    static func open(path: String) throws -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: path)
        try database.execute("PRAGMA journal_mode = WAL")
        try database.execute("PRAGMA synchronous = FULL")
        try database.execute("PRAGMA foreign_keys = ON")
        for statement in statements { try database.execute(statement) }
        return database
    }
}
