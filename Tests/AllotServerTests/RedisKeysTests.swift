@testable import AllotServer
import RedisClient
import Testing

/// Every key of a campaign is in one Redis Cluster slot, the one its
/// CampaignKeys names: each script touches one slot, and a cluster client
/// sends it there.
@Suite struct RedisKeysTests {
    @Test func everyKeyOfACampaignIsInItsSlot() {
        for campaign in ["c", "bench", "a-much-longer-campaign-id-2026", "x{y}z"] {
            let keys = CampaignKeys(campaign)
            var command = RedisCommand(argumentCount: 3)
            keys.appendIPBucket("2001:db8::1", to: &command)
            keys.appendCitizenBucket("0123456789abcdef0123456789abcdef", to: &command)
            keys.appendIdempotency("fedcba", to: &command)
            let named = [keys.config, keys.remaining, keys.holdings, keys.stats, keys.stream, keys.globalBucket, keys.records,
                         keys.capacity, keys.sites, keys.slots, keys.idempotency("k")]
            for key in named { #expect(ClusterSlot.of(key) == keys.slot, "\(campaign): \(key)") }
            // The keys appended in pieces, read back from the command's bytes.
            let text = String(decoding: command.bytes, as: UTF8.self)
            let appended = text.split(separator: "\r\n").filter { $0.hasPrefix("{") }
            #expect(appended.count == 3)
            for key in appended { #expect(ClusterSlot.of(String(key)) == keys.slot, "\(campaign): \(key)") }
        }
    }
}
