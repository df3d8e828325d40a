import AllotDomain
import EventHTTP

/// The citizen's read endpoints, answered from the loop's snapshot (or,
/// for a campaign that left the hot set, from Redis by CampaignFinder).
/// One per loop; touched on its loop only.
final class CitizenReads {
    let catalog: Catalog
    let finder: CampaignFinder
    /// The snapshot's refresh period in whole seconds (at least 1): the open
    /// data's `max-age`.
    let refreshSeconds: Int

    init(catalog: Catalog, finder: CampaignFinder, refreshMillis: Int) {
        self.catalog = catalog
        self.finder = finder
        refreshSeconds = max(1, (refreshMillis + 999) / 1000)
    }

    var freshCatalog: Catalog? { finder.freshCatalog }

    func listCampaigns() -> Answer {
        guard let catalog = freshCatalog else { return .problem(.unavailable("campaign data is not available")) }
        return .json(200, shared: cached(catalog, RenderedKey(listing: .campaigns)) {
            let now = WallClock.nowMillis()
            var json = JSONWriter(capacity: 1024)
            json.beginObject()
            json.key("campaigns")
            json.beginArray()
            let listed = catalog.campaigns.values.map(\.campaign).filter { $0.isListed(nowMillis: now) }
            for campaign in listed.sorted(by: { ($0.opensAtMillis, $0.id) < ($1.opensAtMillis, $1.id) }) {
                campaign.write(to: &json, nowMillis: now)
            }
            json.endArray()
            json.endObject()
            return json.bytes
        })
    }

    func getCampaign(_ id: String, exchange: HTTPExchange) {
        withVisibleCampaign(id, exchange) { view in
            var json = JSONWriter()
            view.campaign.write(to: &json, nowMillis: WallClock.nowMillis())
            return .json(200, json.bytes)
        }
    }

    func listSites(_ id: String, exchange: HTTPExchange) {
        withVisibleCampaign(id, exchange) { [self] view in
            .json(200, shared: cached(catalog, RenderedKey(listing: .sites, campaign: id)) {
                let remainingBySite = view.remainingBySite()
                var json = JSONWriter(capacity: 128 * view.sites.count + 16)
                json.beginObject()
                json.key("sites")
                json.beginArray()
                for site in view.sites {
                    json.beginObject()
                    json.field("id", site.id)
                    json.field("name", site.name)
                    json.field("address", site.address)
                    json.field("remaining", remainingBySite[site.id] ?? 0)
                    json.endObject()
                }
                json.endArray()
                json.endObject()
                return json.bytes
            })
        }
    }

    func listSlots(_ id: String, query: Substring?, exchange: HTTPExchange) {
        let site = QueryString.value(of: "site", in: query)
        if let site, !OperatorID.isValid(site) { return exchange.send(.problem(.invalidField("site", "must be a site id"))) }
        withVisibleCampaign(id, exchange) { [self] view in
            if let site, !view.sites.contains(where: { $0.id == site }) { return .problem(.notFound("no such site")) }
            return .json(200, shared: cached(catalog, RenderedKey(listing: .slots, campaign: id, site: site)) {
                var json = JSONWriter(capacity: 160 * view.slots.count + 16)
                json.beginObject()
                json.key("slots")
                json.beginArray()
                for slot in view.slots where site == nil || slot.siteID == site {
                    slot.write(to: &json, remaining: view.remaining[slot.id] ?? 0, withSite: true)
                }
                json.endArray()
                json.endObject()
                return json.bytes
            })
        }
    }

    /// The open availability data, rendered once per refresh (for a hot
    /// campaign) with its validators.
    func openAvailability(_ id: String, format: OpenDataFormat, exchange: HTTPExchange) {
        let ifNoneMatch = exchange.header("If-None-Match"), acceptEncoding = exchange.header("Accept-Encoding")
        let key = OpenDataKey(campaign: id, format: format)
        // Rendered already in this refresh (every poll but the first): only
        // visible campaigns are ever cached.
        if let rendered = freshCatalog?.openDataCache[key] {
            return OpenData.send(rendered, to: exchange, ifNoneMatch: ifNoneMatch, acceptEncoding: acceptEncoding)
        }
        answer(campaign: id, exchange) { [self] found in
            let view: CampaignView
            switch found {
            case .success(let found): view = found
            case .failure(let problem): return .problem(problem)
            }
            let hot = catalog.campaigns[id] === view
            let rendered: OpenData.Rendered
            if hot, let cached = catalog.openDataCache[key] {
                rendered = cached
            } else {
                let now = WallClock.nowMillis()
                rendered = OpenData.render(view, format: format, asOfMillis: hot ? catalog.refreshedAtWallMillis : now,
                                           nowMillis: now, maxAgeSeconds: refreshSeconds, compress: hot)
                // Bounded like the listings: only visible campaigns get here.
                if hot, catalog.openDataCache.count < 4096 { catalog.openDataCache[key] = rendered }
            }
            OpenData.send(rendered, to: exchange, ifNoneMatch: ifNoneMatch, acceptEncoding: acceptEncoding)
            return nil
        }
    }

    private func withVisibleCampaign(_ id: String, _ exchange: HTTPExchange, _ render: @escaping (CampaignView) -> Answer) {
        answer(campaign: id, exchange) { found in
            switch found {
            case .success(let view): render(view)
            case .failure(let problem): .problem(problem)
            }
        }
    }

    /// Answers `exchange` with `answer` of the campaign citizens may see, or
    /// of why not (the JSON reads, the pages, the dashboard): at once for a
    /// campaign the loop knows (nearly every request, with no closure kept
    /// for a lookup that did not happen), else once it is fetched.
    /// `answer` nil: it has answered itself.
    func answer(campaign id: String, _ exchange: HTTPExchange, _ answer: @escaping (Result<CampaignView, Problem>) -> Answer?) {
        if let known = knownVisibleCampaign(id) {
            if let answer = answer(known) { exchange.send(answer) }
            return
        }
        visibleCampaign(id) { found in
            if let answer = answer(found) { exchange.send(answer) }
        }
    }

    /// The campaign citizens may see: any but drafts.
    func visibleCampaign(_ id: String, _ completion: @escaping (Result<CampaignView, Problem>) -> Void) {
        finder.campaign(id) { completion(Self.visible($0)) }
    }

    /// The same, when the loop already knows it; nil: use `visibleCampaign`.
    func knownVisibleCampaign(_ id: String) -> Result<CampaignView, Problem>? {
        finder.knownCampaign(id).map(Self.visible)
    }

    private static func visible(_ found: Result<CampaignView?, Problem>) -> Result<CampaignView, Problem> {
        switch found {
        case .failure(let problem): return .failure(problem)
        case .success(let view?) where view.campaign.status != .draft: return .success(view)
        case .success: return .failure(.notFound("no such campaign"))
        }
    }

    /// A rendered body, kept until the snapshot's next refresh.
    private func cached(_ catalog: Catalog, _ key: RenderedKey, _ render: () -> [UInt8]) -> SharedBytes {
        if let body = catalog.renderedCache[key] { return body }
        let body = SharedBytes(render())
        // Bounded: a hostile client could vary `?site=`; only valid site ids
        // of the campaign get here, and the cache is dropped every refresh.
        if catalog.renderedCache.count < 4096 { catalog.renderedCache[key] = body }
        return body
    }
}

enum QueryString {
    /// The raw value of `name` in `a=1&b=2`; no percent-decoding (the values
    /// Allot reads are ids that never need it).
    static func value(of name: String, in query: Substring?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&", maxSplits: 32) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, parts[0] == name { return String(parts[1]) }
        }
        return nil
    }
}

extension Slot {
    /// A slot as the citizen listings show it (`site_id` where it is not
    /// implied by an enclosing site).
    func write(to json: inout JSONWriter, remaining: Int, withSite: Bool) {
        json.beginObject()
        json.field("id", id)
        if withSite { json.field("site_id", siteID) }
        json.field("starts_at", Timestamp.format(millis: startsAtMillis, alwaysFraction: false))
        json.field("ends_at", Timestamp.format(millis: endsAtMillis, alwaysFraction: false))
        json.field("capacity", capacity)
        json.field("remaining", remaining)
        json.endObject()
    }
}
