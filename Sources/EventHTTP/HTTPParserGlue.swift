import CHTTPParser

/// The C side of http_parser, shared by the request parser (server) and the
/// client connection: its callbacks get a parser whose `data` points at the
/// Swift object that owns it, and byte ranges as a pointer and a length.
enum HTTPParserGlue {
    /// The object a parser's `data` was set to (unretained: it owns the parser).
    static func owner<Owner: AnyObject>(of parser: UnsafeMutablePointer<http_parser>?, as _: Owner.Type) -> Owner {
        Unmanaged<Owner>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
    }

    /// A callback's bytes (none when `at` is nil).
    static func bytes(_ at: UnsafePointer<CChar>?, _ length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: at, count: at == nil ? 0 : length)
    }

    /// Settings made once and never freed (http_parser only reads them),
    /// with the callbacks `configure` sets.
    static func settings(_ configure: (inout http_parser_settings) -> Void) -> UnsafeMutablePointer<http_parser_settings> {
        let settings = UnsafeMutablePointer<http_parser_settings>.allocate(capacity: 1)
        settings.initialize(to: http_parser_settings())
        http_parser_settings_init(settings)
        configure(&settings.pointee)
        return settings
    }
}
