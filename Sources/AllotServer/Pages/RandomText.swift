import AllotDomain

/// Unguessable texts: a form's idempotency key, a session's CSRF token.
enum RandomText {
    /// 128 bits from the system's generator, as 32 hex digits.
    static func hex128() -> String {
        var generator = SystemRandomNumberGenerator()
        let words = (generator.next() as UInt64, generator.next() as UInt64)
        return withUnsafeBytes(of: words) { Hex.encode($0) }
    }
}
