import AllotDomain
import EventHTTP

/// The answers every page handler sends: a page in the reader's language
/// with the security headers, an error page, a redirect.
enum PageAnswers {
    static func language(_ exchange: HTTPExchange) -> PageLanguage {
        PageLanguage.chosen(cookie: exchange.header("Cookie"), acceptLanguage: exchange.header("Accept-Language"))
    }

    /// A form posted from another site's page (CSRF: the citizens' forms and
    /// the sign-in have no session to bind a token to). A browser that sends
    /// `Sec-Fetch-Site` says where the request comes from: anything but
    /// `same-origin` is refused. One that does not is judged by `Origin`:
    /// refused when it is not this `Host` (`null` included, as a sandboxed
    /// frame sends). A client that sends neither (curl, the API's) is not a
    /// browser acting for someone else.
    static func isCrossSite(_ exchange: HTTPExchange) -> Bool {
        if let site = exchange.header("Sec-Fetch-Site") { return site != "same-origin" }
        guard let origin = exchange.header("Origin") else { return false }
        guard let host = exchange.header("Host"), let schemeEnd = origin.range(of: "://") else { return true }
        // Host names compare without case.
        return origin[schemeEnd.upperBound...].lowercased() != host.lowercased()
    }

    /// Cookie `name`'s value in a `Cookie` header (at most 32 are read).
    static func cookie(_ name: String, in header: String) -> String? {
        for pair in header.split(separator: ";", maxSplits: 32).prefix(32) {
            let trimmed = pair.drop { $0 == " " }
            if trimmed.hasPrefix(name + "=") { return String(trimmed.dropFirst(name.count + 1)) }
        }
        return nil
    }

    /// A page anyone may be shown (revalidated, since places change).
    static func page(_ status: Int, _ body: SharedBytes, _ language: PageLanguage) -> Answer {
        Answer(status: status, contentType: PageRenderer.htmlType, headers: pageHeaders[language] ?? [], body: [], sharedBody: body)
    }

    /// A page only its reader may see (a pickup code, a form's token): kept
    /// by no cache, shared or not.
    static func privatePage(_ status: Int, _ body: [UInt8], _ language: PageLanguage) -> Answer {
        Answer(status: status, contentType: PageRenderer.htmlType, headers: privatePageHeaders[language] ?? [], body: body)
    }

    static func seeOther(_ location: String) -> Answer {
        Answer(status: 303, contentType: PageRenderer.htmlType, headers: PageRenderer.securityHeaders + [("Location", location)],
               body: [])
    }

    static func notFound(_ language: PageLanguage, path: String) -> Answer {
        problemPage(404, "not_found", language, path: path)
    }

    /// 503: nothing was done; try again shortly.
    static func unavailable(_ language: PageLanguage, path: String, detail: String = "unavailable_detail") -> Answer {
        var answer = problemPage(503, "unavailable", language, path: path, detail: detail)
        answer.headers.append(("Retry-After", "2"))
        return answer
    }

    /// A page with the title and detail of messages `<name>_title` and
    /// `<name>_detail` (or message `detail`, or `detailText` as it is),
    /// "Error:" in its title; `link`: a way on (its text a message key).
    static func problemPage(_ status: Int, _ name: String, _ language: PageLanguage, path: String, detail: String? = nil,
                            detailText: String? = nil, link: (href: String, text: String)? = nil) -> Answer {
        let title = PageRenderer.message("\(name)_title", language)
        var values: [String: Any] = ["detail": detailText ?? PageRenderer.message(detail ?? "\(name)_detail", language)]
        if let link { values["link_href"] = link.href; values["link_text"] = PageRenderer.message(link.text, language) }
        let body = PageRenderer.render("problem", values, title: title, isError: true, language: language, path: path)
        return Answer(status: status, contentType: PageRenderer.htmlType, headers: privatePageHeaders[language] ?? [], body: body)
    }

    private static let pageHeaders = headersByLanguage(cacheControl: "no-cache")
    private static let privatePageHeaders = headersByLanguage(cacheControl: "no-store, private")

    /// A page's headers in each language, made once.
    private static func headersByLanguage(cacheControl: String) -> [PageLanguage: [(String, String)]] {
        Dictionary(uniqueKeysWithValues: PageLanguage.allCases.map {
            ($0, PageRenderer.securityHeaders + [("Content-Language", $0.rawValue), ("Vary", "Accept-Language, Cookie"),
                                                 ("Cache-Control", cacheControl)])
        })
    }
}
