import EventHTTP
import Foundation
import Mustache

/// The pages' templates (Pages/Templates, Mustache: every value is
/// HTML-escaped unless a template says otherwise; only the dashboard's
/// chart, SVG that SeriesChart escapes itself, is not), their
/// messages in each language, and the headers every page carries.
enum PageRenderer {
    /// Every page: no script may run, nothing loads from elsewhere, no
    /// framing, no referrer leaves the site (a reservation id is a
    /// capability). `same-origin` rather than `no-referrer`: with the latter
    /// a browser sends `Origin: null` on the pages' own form posts, and the
    /// cross-site check (PageAnswers.isCrossSite) needs their origin.
    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy",
         "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
    ]

    static let htmlType = "text/html; charset=utf-8"

    private static let resources: (library: MustacheLibrary, messages: [PageLanguage: [String: String]], stylesheet: SharedBytes) = {
        guard let directory = Bundle.module.url(forResource: "Templates", withExtension: nil),
              let messages = Bundle.module.url(forResource: "Messages", withExtension: nil) else {
            fatalError("missing resources Pages/Templates or Pages/Messages")
        }
        var library = MustacheLibrary()
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for file in files where file.hasSuffix(".mustache") {
            guard let text = try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8) else {
                fatalError("unreadable template \(file)")
            }
            do { try library.register(text, named: String(file.dropLast(".mustache".count))) } catch {
                fatalError("template \(file): \(error)")
            }
        }
        var tables: [PageLanguage: [String: String]] = [:]
        for language in PageLanguage.allCases {
            let url = messages.appendingPathComponent(language.rawValue + ".json")
            guard let data = try? Data(contentsOf: url),
                  let table = try? JSONSerialization.jsonObject(with: data) as? [String: String] else {
                fatalError("missing or malformed messages \(language.rawValue).json")
            }
            tables[language] = table
        }
        guard let css = try? Data(contentsOf: directory.appendingPathComponent("style.css")) else { fatalError("missing style.css") }
        return (library, tables, SharedBytes(Array(css)))
    }()

    static var stylesheet: SharedBytes { resources.stylesheet }

    static func message(_ key: String, _ language: PageLanguage) -> String {
        resources.messages[language]?[key] ?? resources.messages[.english]?[key] ?? key
    }

    /// `template` with `values`, the messages as `t`, and what the layout
    /// needs (the language, the switch to the other one, back to `path`).
    static func render(_ template: String, _ values: [String: Any], title: String, isError: Bool = false,
                       language: PageLanguage, path: String) -> [UInt8] {
        var context = values
        context["t"] = resources.messages[language] ?? [:]
        context["lang"] = language.rawValue
        context["other_lang"] = language.other.rawValue
        context["title"] = title
        context["error"] = isError
        context["path"] = path
        context["has_errors"] = (values["errors"] as? [Any]).map { !$0.isEmpty } ?? false
        return Array((resources.library.render(context, withTemplate: template) ?? "").utf8)
    }
}
