import AllotDomain

/// libFuzzer entry point (scripts/fuzz.sh): everything a citizen's request
/// goes through before Redis. The first byte picks the parser, the rest is
/// its input. None may crash, hang or allocate without bound.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let input = Array(bytes.dropFirst())
    let text = String(decoding: input, as: UTF8.self)
    switch bytes[0] % 6 {
    case 0:
        for method in [HTTPMethod.get, .post, .put, .patch, .delete] { _ = Router.route(method: method, path: Substring(text)) }
    case 1:
        _ = try? JSONParser.parse(input)
    case 2:
        _ = try? ReserveRequest.decode(input)
    case 3:
        for scheme in IDScheme.allCases { _ = scheme.normalize(text) }
    case 4:
        if let fields = try? Fields.parse(input) {
            _ = try? Campaign.decode(fields)
            _ = try? Slot.decodeList(fields)
            _ = try? Site.decodeList(fields)
            _ = try? RateLimits.decode(fields)
        }
    default:
        _ = ReservationID(parsing: Substring(text))
        _ = Timestamp.parse(text)
        _ = ClientAddress.resolve(peer: "10.0.0.1", forwardedFor: text, trusted: [AddressRange("10.0.0.0/8")!])
    }
    return 0
}

/// libFuzzer's driver, from the fuzzer runtime `-sanitize=fuzzer` links.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt) -> CInt

/// SwiftPM links executables with `main` aliased to `<module>_main`, which
/// `-parse-as-library` does not emit; so this is it, and it hands over to
/// libFuzzer's driver (whose own `main` is then never linked in).
@_cdecl("allot_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { start, size in fuzz(start, size) }
}
