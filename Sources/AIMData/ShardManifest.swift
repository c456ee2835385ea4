import AIMConfig
import Foundation

/// What `aim-data shard` wrote for one split (`DIR/<split>-manifest.json`): the shards in
/// order with their sample and member counts, sizes and SHA-256 checksums, and the source
/// videos that were skipped. Paths are relative to the manifest's folder, so the folder can be
/// copied anywhere. Written with a fixed key order and no timestamps: the same input gives the
/// same bytes.
public struct ShardManifest: Equatable, Sendable {
    public struct Shard: Equatable, Sendable {
        public var tar: String
        public var index: String
        public var samples: Int
        public var members: Int
        public var bytes: Int64
        public var sha256: String
        public var indexSHA256: String
    }
    public struct Skipped: Equatable, Sendable {
        public var path: String
        public var reason: String
    }

    public var split: String
    public var pattern: String
    public var samples: Int
    public var shards: [Shard]
    public var skipped: [Skipped]

    public static let format = "aim-shards"
    public static let version = 1

    public static func fileName(split: String) -> String { "\(split)-manifest.json" }

    public func json() -> String {
        let shardLines = shards.map {
            "    {\"tar\": \(jsonString($0.tar)), \"index\": \(jsonString($0.index)), \"samples\": \($0.samples), "
                + "\"members\": \($0.members), \"bytes\": \($0.bytes), \"sha256\": \(jsonString($0.sha256)), "
                + "\"index_sha256\": \(jsonString($0.indexSHA256))}"
        }
        let skippedLines = skipped.map { "    {\"path\": \(jsonString($0.path)), \"reason\": \(jsonString($0.reason))}" }
        func list(_ l: [String]) -> String { l.isEmpty ? "[]" : "[\n" + l.joined(separator: ",\n") + "\n  ]" }
        return "{\n  \"format\": \"\(Self.format)\",\n  \"version\": \(Self.version),\n  \"split\": \(jsonString(split)),\n"
            + "  \"pattern\": \(jsonString(pattern)),\n  \"samples\": \(samples),\n  \"shards\": \(list(shardLines)),\n"
            + "  \"skipped\": \(list(skippedLines))\n}\n"
    }

    public static func read(_ file: String) throws -> ShardManifest {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TarError(path: file, message: "cannot read the shard manifest")
        }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TarError(path: file, message: "the shard manifest is not a JSON object")
        }
        guard o["format"] as? String == format, let v = o["version"] as? Int else {
            throw TarError(path: file, message: "not an aim-shards manifest (\"format\": \"\(format)\" missing)")
        }
        guard v == version else { throw TarError(path: file, message: "manifest version \(v); this build reads version \(version)") }
        func str(_ d: [String: Any], _ k: String) throws -> String {
            guard let s = d[k] as? String else { throw TarError(path: file, message: "manifest entry without `\(k)`") }
            return s
        }
        func int(_ d: [String: Any], _ k: String) throws -> Int {
            guard let n = d[k] as? Int, jsonBoolean(d[k]) == nil else { throw TarError(path: file, message: "manifest entry without integer `\(k)`") }
            return n
        }
        // A NUL would cut the path short where C opens it, so another file would be read.
        func path(_ d: [String: Any], _ k: String) throws -> String {
            let s = try str(d, k)
            guard !s.isEmpty else { throw TarError(path: file, message: "manifest entry with an empty `\(k)`") }
            if let c = controlCharacter(in: s) {
                throw TarError(path: file, message: "manifest `\(k)` \(jsonString(s)) has control character \(c.name) at column \(c.column)")
            }
            return s
        }
        let shards = try ((o["shards"] as? [[String: Any]]) ?? []).map {
            Shard(tar: try path($0, "tar"), index: try path($0, "index"), samples: try int($0, "samples"),
                  members: try int($0, "members"), bytes: Int64(try int($0, "bytes")), sha256: try str($0, "sha256"),
                  indexSHA256: try str($0, "index_sha256"))
        }
        let skipped = try ((o["skipped"] as? [[String: Any]]) ?? []).map { Skipped(path: try str($0, "path"), reason: try str($0, "reason")) }
        return ShardManifest(split: try str(o, "split"), pattern: try str(o, "pattern"), samples: try int(o, "samples"),
                             shards: shards, skipped: skipped)
    }
}
