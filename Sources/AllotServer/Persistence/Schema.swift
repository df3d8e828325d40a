import SQLiteStore

/// SQLite: the record of truth for configuration and, once persisted, for
/// reservations. WAL with synchronous=FULL: one fsync per committed batch.
public enum Schema {
    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS campaigns (
          id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, id_scheme TEXT NOT NULL,
          per_citizen_limit INTEGER NOT NULL, opens_at INTEGER NOT NULL, closes_at INTEGER NOT NULL,
          rate_limits TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
          route INTEGER)
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
        // Bearer tokens: only their SHA-256 digest is kept.
        """
        CREATE TABLE IF NOT EXISTS tokens (
          name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'auditor')),
          digest TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, last_used_at INTEGER, revoked_at INTEGER)
        """,
        // Hash-chained (AuditLog.swift): ids are given by the appender, so
        // the hash covers them.
        """
        CREATE TABLE IF NOT EXISTS audit (
          id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
          subject TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL,
          prev_hash TEXT NOT NULL, hash TEXT NOT NULL)
        """,
    ]

    /// The persister's write of one reservation event (PersistBatcher.swift).
    public static let reservationUpsert = ReservationEvent.upsertSQL

    public static func open(path: String) throws -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: path)
        try database.execute("PRAGMA journal_mode = WAL")
        try database.execute("PRAGMA synchronous = FULL")
        try database.execute("PRAGMA foreign_keys = ON")
        for statement in statements { try database.execute(statement) }
        try addRoutes(database)
        return database
    }

    /// Every campaign has a route (RouteCipher): the number its reservation
    /// ids carry. A file made before routes existed gets one per campaign,
    /// in the order they were made.
    static func addRoutes(_ database: SQLiteDatabase) throws {
        let columns = try database.statement("PRAGMA table_info(campaigns)").rows { $0.text(1) }
        if !columns.contains("route") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN route INTEGER")
        }
        try database.execute("UPDATE campaigns SET route = rowid WHERE route IS NULL")
        try database.execute("CREATE UNIQUE INDEX IF NOT EXISTS campaigns_by_route ON campaigns (route)")
    }
}
