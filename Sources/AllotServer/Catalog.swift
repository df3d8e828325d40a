import AllotDomain
import EventHTTP
import RedisClient

/// A loop's read snapshot of every campaign, refreshed from Redis at most
/// every `snapshotRefreshMillis`, so a read storm is not a Redis storm. Reads
/// answer from it while it is younger than `snapshotStaleMillisMax`.
final class Catalog {
    private let loop: EventLoop
    private let redis: RedisAsyncClient
    private(set) var campaigns: [String: CampaignView] = [:]
    /// Monotonic time of the last refresh that reached Redis; 0: never.
    private(set) var refreshedAtMicros: Int64 = 0
    private var refreshInFlight = false
    /// Rendered listings, valid until the next refresh.
    var renderedCache: [String: SharedBytes] = [:]

    init(loop: EventLoop, redis: RedisAsyncClient) {
        self.loop = loop
        self.redis = redis
    }

    func ageMillis(nowMicros: Int64 = monotonicMicros()) -> Int64 {
        refreshedAtMicros == 0 ? Int64.max : (nowMicros - refreshedAtMicros) / 1000
    }

    /// Starts one refresh unless one is already under way.
    func refresh() {
        loop.preconditionInLoop()
        guard !refreshInFlight, redis.isConnected else { return }
        refreshInFlight = true
        redis.send(["SMEMBERS", GlobalKeys.campaigns]) { [self] result in
            guard case .success(let reply) = result, let members = reply.elements else {
                refreshInFlight = false
                return
            }
            refreshCampaigns(members.compactMap(\.text).filter { OperatorID.isValid($0) })
        }
    }

    private func refreshCampaigns(_ ids: [String]) {
        var next: [String: CampaignView] = [:]
        var outstanding = ids.count
        var failed = false
        let finish = { [self] in
            refreshInFlight = false
            guard !failed else { return }
            campaigns = next
            renderedCache.removeAll(keepingCapacity: true)
            refreshedAtMicros = monotonicMicros()
        }
        guard outstanding > 0 else { finish(); return }
        for id in ids {
            let keys = CampaignKeys(id)
            let known = campaigns[id]
            redis.run(Scripts.snapshot, keys: [keys.config, keys.remaining, keys.capacity, keys.sites, keys.slots],
                      arguments: [known?.version ?? ""]) { [self] result in
                switch result {
                case .success(let reply):
                    if let view = apply(reply, id: id, known: known) { next[id] = view }
                    else if reply.errorMessage != nil { failed = true }
                case .failure:
                    failed = true
                }
                outstanding -= 1
                if outstanding == 0 { finish() }
            }
        }
    }

    private func apply(_ reply: RedisReply, id: String, known: CampaignView?) -> CampaignView? {
        guard let parts = reply.elements, parts.count == 6, let version = parts[0].text else { return nil }
        let remaining = parts[5].integerPairs
        if let known, known.version == version {
            known.remaining = remaining
            return known
        }
        return CampaignView.decode(id: id, version: version, config: parts[1].pairs ?? [:],
                                   capacity: parts[2].pairs ?? [:], sites: parts[3].pairs ?? [:],
                                   slots: parts[4].pairs ?? [:], remaining: remaining)
    }
}
