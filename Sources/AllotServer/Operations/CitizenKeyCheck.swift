import AllotDomain
import Logging
import RedisClient

/// Every node sharing a Redis must key citizens alike: a node with another
/// citizen key would see the same citizen as a stranger, and let them book
/// twice. The first node to start records a fingerprint of its key (a
/// keyed hash of a fixed text, which reveals nothing of the key); every
/// node compares its own at start and refuses to serve on a mismatch.
enum CitizenKeyCheck {
    static let key = "allot:citizen-key"

    struct Mismatch: Error, CustomStringConvertible {
        var description: String {
            "this node's citizen key differs from the one the other nodes on this Redis use "
                + "(ALLOT_CITIZEN_KEY or <data-dir>/citizen.key): it would key citizens differently and let them book twice"
        }
    }

    static func verify(_ keyer: CitizenKeyer, redis deployment: RedisDeployment, logger: Logger) throws {
        let fingerprint = keyer.citizenKey(normalizedID: "allot citizen key fingerprint v1")
        let redis = deployment.blockingClient(timeoutMillis: 2_000)
        defer { redis.close() }
        let slot = ClusterSlot.of(key)
        do {
            let stored = try redis.checked(["SET", key, fingerprint, "NX", "GET"], slot: slot)
            if let text = stored.text, text != fingerprint { throw Mismatch() }
        } catch let mismatch as Mismatch {
            throw mismatch
        } catch {
            // Redis away at start: serving waits for it anyway; checked at the next start.
            logger.warning("citizen key not checked against the other nodes'", metadata: ["error": "\(error)"])
        }
    }
}
