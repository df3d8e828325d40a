import EventHTTP
import Foundation

/// `GET /openapi.yaml`: the contract as a document a machine can check
/// (Contract/openapi.yaml, also at the repository's root), served as it
/// ships, read once.
enum OpenAPIDocument {
    static let bytes: SharedBytes = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let data = try? Data(contentsOf: url) else {
            fatalError("missing resource openapi.yaml")
        }
        return SharedBytes(Array(data))
    }()

    static var answer: Answer {
        Answer(status: 200, contentType: "application/yaml; charset=utf-8", headers: [], body: [], sharedBody: bytes)
    }
}
