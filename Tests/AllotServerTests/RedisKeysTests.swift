@testable import AllotServer
import AllotDomain
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

    /// A spread campaign's buckets fall in equal parts of the slot space,
    /// so a cluster's masters (contiguous ranges) get nearly equal numbers.
    @Test func bucketsSpreadEvenlyOverTheSlotSpace() {
        for count in [2, 3, 16, 64] {
            let buckets = CampaignBuckets(count)!
            let layout = CampaignLayout("camp-\(count)", buckets: buckets)
            for (bucket, keys) in layout.bucketKeys.enumerated() {
                #expect(keys.slot >= bucket * ClusterSlot.count / count && keys.slot < (bucket + 1) * ClusterSlot.count / count)
                #expect(CampaignKeys(RouteTarget(campaign: "camp-\(count)", spreadBucket: bucket, buckets: buckets)).tag == keys.tag)
            }
            #expect(Set(layout.bucketKeys.map(\.tag)).count == count)
        }
        // Three equal masters get 6, 5 and 5 of 16.
        let owners = CampaignLayout("wide", buckets: CampaignBuckets(16)!).bucketKeys.map { $0.slot * 3 / ClusterSlot.count }
        #expect([0, 1, 2].map { master in owners.filter { $0 == master }.count }.sorted() == [5, 5, 6])
    }

    /// A series' campaigns share its buckets' tags (so a citizen's ledger
    /// and their reservations in every campaign are on one slot), and keep
    /// their own names under them.
    @Test func aSeriesCampaignsShareTheSeriesBucketsAndKeepTheirNames() throws {
        for count in [1, 3] {
            let buckets = try #require(CampaignBuckets(count, series: "wk"))
            #expect(buckets.isSpread)
            let one = CampaignLayout("one", buckets: buckets), two = CampaignLayout("two", buckets: buckets)
            #expect(one.isSpread && one.bucketKeys.count == count)
            for bucket in 0..<count {
                let a = one.bucketKeys[bucket], b = two.bucketKeys[bucket]
                #expect(a.tag == b.tag && a.slot == b.slot && a.isSeriesBucket)
                #expect(a.remaining != b.remaining && a.records != b.records && a.stream != b.stream && a.config != b.config)
                #expect(a.seriesLedger("k1") == b.seriesLedger("k1"))
                var command = RedisCommand(argumentCount: 4)
                a.appendIPBucket("10.0.0.1", to: &command)
                a.appendCitizenBucket("k1", to: &command)
                a.appendIdempotency("h", to: &command)
                a.appendSeriesLedger("k1", to: &command)
                let appended = String(decoding: command.bytes, as: UTF8.self).split(separator: "\r\n").filter { $0.hasPrefix("{") }
                #expect(appended.count == 4 && appended.allSatisfy { ClusterSlot.of(String($0)) == a.slot })
                // Only the ledger is shared; the rest names the campaign.
                #expect(appended.prefix(3).allSatisfy { $0.contains("c:one") } && appended[3] == a.seriesLedger("k1"))
                for key in [a.config, a.remaining, a.holdings, a.stats, a.stream, a.records, a.idempotency("x"), a.transfers] {
                    #expect(ClusterSlot.of(key) == a.slot, "\(key)")
                }
                // The routes hash names the series: a lookup finds these keys.
                let value = RedisConfig.routeValue("one", bucket: bucket, of: buckets)
                let target = try #require(RedisConfig.routeTarget(value))
                #expect(target.buckets == buckets && target.keys.records == a.records)
            }
            // Homes stay the campaigns' own.
            #expect(one.home.tag == "{c:one}" && !one.home.isSeriesBucket)
        }
        #expect(CampaignBuckets(2, series: "Bad Id") == nil)
        #expect(RedisConfig.routeTarget("one|0|1|Bad Id") == nil)
    }
}
