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
        layout.bucketKeys.map { RoutedCommand(slot: $0.slot, ["HDEL", $0.config, retiredField]) } + [addCommand(layout.campaign)]
    }

    static func addCommand(_ campaign: String) -> RoutedCommand { RoutedCommand(slot: slot, ["SADD", key, campaign]) }

    /// Takes a campaign out of the set once retire.lua has marked every
    /// bucket; true when it is out.
    static func retire(_ layout: CampaignLayout, consumerGroup: String, redis: any RedisSyncRouting) throws -> Bool {
        for keys in layout.bucketKeys {
            let reply = try redis.run(Scripts.retire, slot: keys.slot, keys: [keys.config, keys.stream], arguments: [consumerGroup])
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

    /// Puts back every campaign that is out of the set without the mark
    /// (a node died between clearing it and adding the campaign); returns
    /// them. A campaign Redis holds no config of is left to `allot recover`.
    static func sweep(_ redis: any RedisSyncRouting) throws -> [String] {
        let known = try redis.checked(["HVALS", GlobalKeys.routes], slot: GlobalKeys.routesSlot).elements?.compactMap(\.text) ?? []
        let hot = Set(try redis.checked(["SMEMBERS", key], slot: slot).elements?.compactMap(\.text) ?? [])
        var putBack: [String] = []
        for campaign in Set(known).subtracting(hot).sorted() where OperatorID.isValid(campaign) {
            let home = CampaignKeys(campaign)
            let count = try redis.checked(["HGET", home.config, "buckets"], slot: home.slot).text.flatMap { Int($0) } ?? 1
            let layout = CampaignLayout(campaign, buckets: CampaignBuckets(count) ?? .single)
            var unmarked = false
            for keys in layout.bucketKeys where !unmarked {
                let fields = try redis.checked(["HMGET", keys.config, "status", retiredField], slot: keys.slot).elements ?? []
                unmarked = fields.count == 2 && fields[0].text != nil && fields[1].text == nil
            }
            guard unmarked else { continue }
            let add = addCommand(campaign)
            try redis.checked(add.arguments, slot: add.slot)
            putBack.append(campaign)
        }
        return putBack
    }
}
