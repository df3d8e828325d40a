import AllotDomain
import EventHTTP
import EventLoops

/// What a presented operator token is found to be.
enum TokenVerdict: Sendable {
    case granted(Grant)
    /// Not a token: counted against the address.
    case unknown
    /// Not a valid token, from an address that has failed too often.
    case slowed(retryAfterSeconds: Int)
    /// The loop's inbox is full: try again.
    case busy
}

extension SharedServices {
    /// Checks an operator token, for the API's bearer tokens and the
    /// dashboard's sign-in alike. A valid token always works, even one made a
    /// moment ago by `allot token create` (an unknown token makes the admin
    /// worker reload them first; reloads are shared and spaced, so guessing
    /// cannot keep it busy: at most one every `tokenReloadMillisMin`). Only
    /// failures are slowed: an address that keeps failing gets `.slowed`
    /// for tokens that are not valid, while an operator behind the same
    /// address (an office NAT), even with a token made a moment ago, goes on
    /// working. `decide` runs on the exchange's loop.
    func checkToken(_ presented: Substring, address: String, failures: AuthFailureLimiter, exchange: HTTPExchange,
                    loop: EventLoop, _ decide: @escaping (TokenVerdict, HTTPExchange) -> Void) {
        let judge: @Sendable (Grant?) -> TokenVerdict = { grant in
            if let grant { return .granted(grant) }
            if let wait = failures.retryAfter(address) { return .slowed(retryAfterSeconds: wait) }
            failures.failed(address)
            return .unknown
        }
        if let grant = tokens.grant(for: presented) { return decide(judge(grant), exchange) }
        guard let pending = PendingExchange(exchange, loop: loop) else { return decide(.busy, exchange) }
        let boundDecide = LoopBound(decide, loop: loop)
        let tokens = tokens, token = String(presented)
        admin.reloadTokens {
            let verdict = judge(tokens.grant(for: Substring(token)))
            pending.run { boundDecide.wrapped(verdict, $0) }
        }
    }
}
