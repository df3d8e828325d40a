import SQLiteStore

/// SQLite: the record of truth for configuration and, once persisted, for
/// reservations. WAL with synchronous=FULL: one fsync per committed batch.
public enum Schema {
    static let statements = [
        // The fence of the last writer-lease holder that wrote (WriterLease).
        """
        CREATE TABLE IF NOT EXISTS writer_fence (only INTEGER PRIMARY KEY CHECK (only = 1), fence INTEGER NOT NULL)
        """,
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
        reservationsTable("reservations"),
        "CREATE INDEX IF NOT EXISTS reservations_by_campaign ON reservations (campaign_id, id)",
        // Every reservation state change, in the order the persister wrote
        // them; each batch of them is sealed by one audit row
        // (AllotDomain/EventLedger.swift).
        """
        CREATE TABLE IF NOT EXISTS reservation_events (
          seq INTEGER PRIMARY KEY, reservation_id TEXT NOT NULL, campaign_id TEXT NOT NULL, status TEXT NOT NULL,
          slot_id TEXT NOT NULL, site_id TEXT NOT NULL, actor TEXT NOT NULL, at INTEGER NOT NULL, leaf BLOB NOT NULL)
        """,
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

    /// Time-ordered ids: WITHOUT ROWID keeps the rows in id order, and each
    /// batch appends at the right edge of the b-tree. The status check is
    /// written with `OR`, not `IN (…)`: SQLite builds a temporary b-tree for
    /// an IN list on every row written, a sixth of the persister's time.
    /// `expires_at`: a hold's expiry (issue 14), NULL for a reservation
    /// made confirmed.
    static func reservationsTable(_ name: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(name) (
          id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, site_id TEXT NOT NULL, slot_id TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status = 'confirmed' OR status = 'held' OR status = 'cancelled' OR status = 'redeemed'
                                      OR status = 'expired'),
          code TEXT NOT NULL, citizen_key TEXT NOT NULL,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER) WITHOUT ROWID
        """
    }

    /// A file made before the check was rewritten, or before holds, gets
    /// the new table, rows copied, in one transaction (SQLite cannot
    /// change a CHECK in place).
    static func rewriteStatusCheck(_ database: SQLiteDatabase) throws {
        func isRewritten() throws -> Bool {
            try database.statement("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'reservations'")
                .rows { $0.text(0) }.first?.contains("'held'") ?? true
        }
        guard !(try isRewritten()) else { return }
        let columns = "id, campaign_id, site_id, slot_id, status, code, citizen_key, created_at, updated_at"
        try database.transaction {
            // Another process may have rewritten it while this one waited.
            guard !(try isRewritten()) else { return }
            try database.execute(reservationsTable("reservations_rewritten"))
            try database.execute("INSERT INTO reservations_rewritten (\(columns)) SELECT \(columns) FROM reservations")
            try database.execute("DROP TABLE reservations")
            try database.execute("ALTER TABLE reservations_rewritten RENAME TO reservations")
            try database.execute("CREATE INDEX IF NOT EXISTS reservations_by_campaign ON reservations (campaign_id, id)")
        }
    }

    /// The persister's write of one reservation event (PersistBatcher.swift):
    /// insert, or move a row on: held to any other status, confirmed to a
    /// final one (cancelled, redeemed). Replaying an older event never moves
    /// a row back (and changes nothing).
    public static let reservationUpsert = """
        INSERT INTO reservations (id, campaign_id, site_id, slot_id, status, code, citizen_key, created_at, updated_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
        WHERE (reservations.status = 'held' AND excluded.status <> 'held')
           OR (reservations.status = 'confirmed' AND excluded.status <> 'confirmed' AND excluded.status <> 'held')
        """

    /// A lottery registration from a stream (register.lua); one per citizen
    /// and campaign, and a replayed entry changes nothing.
    public static let registrationInsert = """
        INSERT OR IGNORE INTO registrations (id, campaign_id, citizen_key, preferences, created_at) VALUES (?, ?, ?, ?, ?)
        """

    /// The state change that upsert made, sealed by its batch's audit row.
    public static let eventInsert = """
        INSERT INTO reservation_events (seq, reservation_id, campaign_id, status, slot_id, site_id, actor, at, leaf)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    public static func open(path: String) throws -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: path)
        try database.execute("PRAGMA journal_mode = WAL")
        try database.execute("PRAGMA synchronous = FULL")
        try database.execute("PRAGMA foreign_keys = ON")
        for statement in statements { try database.execute(statement) }
        try rewriteStatusCheck(database)
        try addRoutes(database)
        try addBuckets(database)
        try addEligibility(database)
        try addSeries(database)
        try addLottery(database)
        try addHolds(database)
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

    /// A campaign's buckets (CampaignBuckets): 1 for every campaign made
    /// before there were more. Bucket b's route is `route + b`.
    static func addBuckets(_ database: SQLiteDatabase) throws {
        let columns = try database.statement("PRAGMA table_info(campaigns)").rows { $0.text(1) }
        if !columns.contains("buckets") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN buckets INTEGER NOT NULL DEFAULT 1")
        }
    }

    /// A campaign's eligibility rules (EligibilityRules' JSON): none for
    /// every campaign made before there were rules.
    static func addEligibility(_ database: SQLiteDatabase) throws {
        let columns = try database.statement("PRAGMA table_info(campaigns)").rows { $0.text(1) }
        if !columns.contains("eligibility") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN eligibility TEXT NOT NULL DEFAULT '{}'")
        }
    }

    /// A lottery campaign's settings (LotterySettings' JSON), or NULL (first
    /// come); and the registrations of lotteries, as the persister writes
    /// them from the streams.
    static func addLottery(_ database: SQLiteDatabase) throws {
        let columns = try database.statement("PRAGMA table_info(campaigns)").rows { $0.text(1) }
        if !columns.contains("lottery") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN lottery TEXT")
        }
        try database.execute("""
            CREATE TABLE IF NOT EXISTS draws (
              campaign_id TEXT PRIMARY KEY, state TEXT NOT NULL, secret TEXT NOT NULL, commitment TEXT NOT NULL,
              places TEXT NOT NULL, public_value_source TEXT NOT NULL, committed_at INTEGER NOT NULL,
              public_value TEXT, entry_count INTEGER, root TEXT, seed TEXT, winners INTEGER, bias TEXT, ran_at INTEGER,
              error TEXT, started_at INTEGER)
            """)
        try database.execute("""
            CREATE TABLE IF NOT EXISTS draw_entries (
              campaign_id TEXT NOT NULL, rank INTEGER NOT NULL, registration_id TEXT NOT NULL, reservation_id TEXT,
              PRIMARY KEY (campaign_id, rank)) WITHOUT ROWID
            """)
        // An entry's leaf in the tree (its receipt's proof), and the
        // receipt's lookup by registration.
        let entryColumns = try database.statement("PRAGMA table_info(draw_entries)").rows { $0.text(1) }
        if !entryColumns.contains("leaf_index") {
            try database.execute("ALTER TABLE draw_entries ADD COLUMN leaf_index INTEGER")
        }
        try database.execute("CREATE INDEX IF NOT EXISTS draw_entries_by_registration ON draw_entries (registration_id)")
        try database.execute("""
            CREATE TABLE IF NOT EXISTS registrations (
              id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, citizen_key TEXT NOT NULL, preferences TEXT NOT NULL,
              created_at INTEGER NOT NULL, UNIQUE (campaign_id, citizen_key)) WITHOUT ROWID
            """)
    }

    /// A campaign's hold (seconds) and waitlist offer (seconds), or NULL
    /// for none; and waitlist entries, as the persister writes them from
    /// the streams (waitlist.lua's records).
    static func addHolds(_ database: SQLiteDatabase) throws {
        let columns = try database.statement("PRAGMA table_info(campaigns)").rows { $0.text(1) }
        if !columns.contains("hold_seconds") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN hold_seconds INTEGER")
        }
        if !columns.contains("waitlist_offer_seconds") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN waitlist_offer_seconds INTEGER")
        }
        try database.execute("""
            CREATE TABLE IF NOT EXISTS waitlist (
              id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, target TEXT NOT NULL, citizen_key TEXT NOT NULL,
              status TEXT NOT NULL CHECK (status = 'waiting' OR status = 'offered' OR status = 'left' OR status = 'passed'),
              joined_at INTEGER NOT NULL, offer_reservation_id TEXT NOT NULL, offer_code TEXT NOT NULL,
              updated_at INTEGER NOT NULL) WITHOUT ROWID
            """)
        try database.execute("CREATE INDEX IF NOT EXISTS waitlist_by_campaign ON waitlist (campaign_id, joined_at)")
    }

    /// A waitlist entry from a stream (waitlist.lua): inserted, or moved on
    /// from waiting (an entry leaves `waiting` once, for good); a replayed
    /// older event changes nothing.
    public static let waitlistUpsert = """
        INSERT INTO waitlist (id, campaign_id, target, citizen_key, status, joined_at, offer_reservation_id, offer_code, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
        WHERE waitlist.status = 'waiting' AND excluded.status <> 'waiting'
        """

    /// A campaign's series (CampaignSeries' JSON), or NULL.
    static func addSeries(_ database: SQLiteDatabase) throws {
        let columns = try database.statement("PRAGMA table_info(campaigns)").rows { $0.text(1) }
        if !columns.contains("series") {
            try database.execute("ALTER TABLE campaigns ADD COLUMN series TEXT")
        }
    }
}
