import AllotDomain
import RedisClient

/// The hot set (`allot:campaigns`): the campaigns the loops refresh and the
/// persister reads. It lives in its own Redis Cluster slot, apart from every
/// campaign's keys, so no script touches it together with a campaign's: a
/// campaign leaves it and comes back in steps, ordered so that no event
/// reaches a stream the persister has stopped reading.
///
/// - Leaving: retire.lua marks the campaign `retired` in its config hash,
///   atomically with the check that its stream has nothing undelivered;
///   the persister then takes it out of the set and reads the mark again.
///   If the mark is gone by then (a change came in between), the campaign
///   goes straight back in.
/// - Coming back: whatever writes to a retired campaign clears the mark
///   first (transition.lua in its own step; operators' changes with
///   `joinCommands`) and then adds it to the set.
/// - A node that dies between the two leaves a campaign unmarked and out of
///   the set: the persister's `sweep` puts it back.
enum HotSet {
    static let key = GlobalKeys.campaigns
    static let slot = GlobalKeys.campaignsSlot
    /// The config hash's field retire.lua sets.
    static let retiredField = "retired"

    /// Brings a campaign (back) into the hot set, in order: the mark (one
    /// per bucket, each bucket having a stream) is cleared before the
    /// campaign is added.
    static func joinCommands(_ layout: CampaignLayout) -> [RoutedCommand] {
        clearMarks(layout) + [addCommand(layout.campaign)]
    }

    static func clearMarks(_ layout: CampaignLayout) -> [RoutedCommand] {
        layout.bucketKeys.map { RoutedCommand(slot: $0.slot, ["HDEL", $0.config, retiredField]) }
    }

    static func addCommand(_ campaign: String) -> RoutedCommand { RoutedCommand(slot: slot, ["SADD", key, campaign]) }

    /// Takes a campaign out of the set once retire.lua has marked every
    /// bucket; true when it is out.
    static func retire(_ layout: CampaignLayout, consumerGroup: String, redis: any RedisSyncRouting) throws -> Bool {
        // A move out of the pool not yet settled: the sweeper, which
        // follows only hot campaigns, must still finish it.
        if layout.isSpread, try redis.checked(["HLEN", layout.home.transfers], slot: layout.home.slot).integer != 0 { return false }
        for keys in layout.bucketKeys {
            let reply = try redis.run(Scripts.retire, slot: keys.slot, keys: [keys.config, keys.stream, keys.transfers, keys.holds],
                                      arguments: [consumerGroup])
            if let message = reply.errorMessage { throw RedisError(message) }
            // A bucket still busy: the ones marked lose their mark with their next change.
            guard reply.integer == 1 else { return false }
        }
        try redis.checked(["SREM", key, layout.campaign], slot: slot)
        // A change since the marks cleared one, and its SADD may have come
        // before this SREM: the campaign goes back in.
        var marked = true
        for keys in layout.bucketKeys where marked {
            marked = try redis.checked(["HGET", keys.config, retiredField], slot: keys.slot).text != nil
        }
        guard !marked else { return true }
        let add = addCommand(layout.campaign)
        try redis.checked(add.arguments, slot: add.slot)
        return false
    }

    /// Puts back every campaign that is out of the set with a bucket
    /// unmarked (a node died between clearing the mark and adding the
    /// campaign), unless retire.lua finds that bucket retirable after all
    /// (and marks it: a campaign retired before marks existed); returns the
    /// campaigns put back. A campaign Redis holds no config of is left to
    /// `allot recover`. `buckets` says how a campaign is spread.
    static func sweep(_ redis: any RedisSyncRouting, consumerGroup: String,
                      buckets: (String) throws -> CampaignBuckets) throws -> [String] {
        let known = try redis.checked(["HVALS", GlobalKeys.routes], slot: GlobalKeys.routesSlot).elements?
            .compactMap { $0.text.flatMap(RedisConfig.routeTarget)?.campaign } ?? []
        let hot = Set(try redis.checked(["SMEMBERS", key], slot: slot).elements?.compactMap(\.text) ?? [])
        var putBack: [String] = []
        for campaign in Set(known).subtracting(hot).sorted() {
            let layout = CampaignLayout(campaign, buckets: try buckets(campaign))
            var unseen = false
            for keys in layout.bucketKeys where !unseen {
                let fields = try redis.checked(["HMGET", keys.config, "status", retiredField], slot: keys.slot).elements ?? []
                guard fields.count == 2, fields[0].text != nil, fields[1].text == nil else { continue }
                let retirable = try redis.run(Scripts.retire, slot: keys.slot, keys: [keys.config, keys.stream, keys.transfers, keys.holds],
                                              arguments: [consumerGroup])
                unseen = retirable.integer != 1
            }
            guard unseen else { continue }
            let add = addCommand(campaign)
            try redis.checked(add.arguments, slot: add.slot)
            putBack.append(campaign)
        }
        return putBack
    }
}
