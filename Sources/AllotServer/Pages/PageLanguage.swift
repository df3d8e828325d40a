/// The languages of the citizen pages. Chosen by the `allot_lang` cookie
/// (set by the switch on every page), else by `Accept-Language`, else English.
enum PageLanguage: String, CaseIterable, Sendable {
    case english = "en"
    case simplifiedChinese = "zh-Hans"

    static let cookieName = "allot_lang"

    var other: PageLanguage { self == .english ? .simplifiedChinese : .english }

    static func chosen(cookie: String?, acceptLanguage: String?) -> PageLanguage {
        if let cookie, let value = PageAnswers.cookie(cookieName, in: cookie), let language = PageLanguage(rawValue: value) { return language }
        guard let acceptLanguage else { return .english }
        return preferred(acceptLanguage) ?? .english
    }

    /// The first of ours in `Accept-Language` by weight (RFC 9110, 12.5.4):
    /// `zh`, `zh-CN`, `zh-Hans`, `zh-SG` are Simplified Chinese; `en-*` English.
    /// At most 16 entries are read.
    static func preferred(_ acceptLanguage: String) -> PageLanguage? {
        var best: (PageLanguage, Double)?
        for item in acceptLanguage.split(separator: ",", maxSplits: 16).prefix(16) {
            let parts = item.split(separator: ";", maxSplits: 2)
            guard let tag = parts.first?.filter({ $0 != " " && $0 != "\t" }).lowercased() else { continue }
            var weight = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.filter { $0 != " " && $0 != "\t" }.lowercased()
                if pair.hasPrefix("q=") { weight = Double(pair.dropFirst(2)) ?? 0 }
            }
            guard weight > 0, let language = language(ofTag: tag) else { continue }
            if best == nil || weight > best!.1 { best = (language, weight) }
        }
        return best?.0
    }

    private static func language(ofTag tag: String) -> PageLanguage? {
        if tag == "en" || tag.hasPrefix("en-") { return .english }
        // Traditional Chinese readers are better served in English than in the
        // wrong script; zh alone, mainland and Singapore are Simplified.
        if tag == "zh" || tag == "zh-cn" || tag == "zh-sg" || tag.hasPrefix("zh-hans") { return .simplifiedChinese }
        return nil
    }
}
