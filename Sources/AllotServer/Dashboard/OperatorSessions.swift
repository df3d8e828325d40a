import AllotDomain
import EventHTTP

/// A signed-in operator on the dashboard: the grant of their token, and
/// the CSRF token every form of theirs must carry.
struct OperatorSession {
    let grant: Grant
    let csrf: String
}

/// The dashboard's sign-in: an operator token is taken once, then kept as
/// a session cookie (sealed, HttpOnly, SameSite=Strict, expiring after
/// `lifetimeMillis`; Secure behind TLS). The cookie names the token by its
/// SHA-256 digest, never the token, and is checked against the token
/// directory on every request, so revoking the token ends its sessions at
/// the next refresh.
struct OperatorSessions: Sendable {
    static let cookieName = "allot_ops"
    static let lifetimeMillis: Int64 = 8 * 3600 * 1000
    private let box: SealedFields
    private let tokens: TokenDirectory
    private let secure: Bool

    init(secret: [UInt8], tokens: TokenDirectory, secure: Bool) {
        box = SealedFields(secret: secret, purpose: "operator session")
        self.tokens = tokens
        self.secure = secure
    }

    /// The session a request's `Cookie` header carries, if it is valid now.
    func session(cookieHeader: String?, nowMillis: Int64) -> OperatorSession? {
        guard let value = cookieHeader.flatMap({ PageAnswers.cookie(Self.cookieName, in: $0) }),
              let (fields, _) = box.open(value, nowMillis: nowMillis), fields.count == 2,
              let grant = tokens.grant(forDigest: fields[0]) else { return nil }
        return OperatorSession(grant: grant, csrf: fields[1])
    }

    /// `Set-Cookie` for a new session of the token with this digest.
    func cookie(tokenDigest: String, nowMillis: Int64) -> String {
        let value = box.seal([tokenDigest, RandomText.hex128()], expiresAtMillis: nowMillis + Self.lifetimeMillis) ?? ""
        return "\(Self.cookieName)=\(value); Path=/ops; Max-Age=\(Self.lifetimeMillis / 1000); HttpOnly; SameSite=Strict"
            + (secure ? "; Secure" : "")
    }

    /// `Set-Cookie` that ends the session in the browser.
    var clearingCookie: String {
        "\(Self.cookieName)=; Path=/ops; Max-Age=0; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// Whether a posted form's CSRF token is the session's (compared in time
    /// independent of where they differ).
    static func csrfMatches(_ posted: String?, _ session: OperatorSession) -> Bool {
        guard let posted, posted.utf8.count == session.csrf.utf8.count else { return false }
        return zip(posted.utf8, session.csrf.utf8).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
