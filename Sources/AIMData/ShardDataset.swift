import Foundation

/// A split stored as tar shards in the WebDataset layout (`data.format: shards`): the samples in
/// shard order, each a video member's byte range and the label from its `.cls` member.
///
/// `data.train` (or val/test) names the shards as WebDataset does, with brace ranges
/// (`DIR/train-{000000..000127}.tar`, also `{a,b}` lists), or names the manifest
/// `aim-data shard` wrote (`DIR/train-manifest.json`). Everything is checked before training
/// starts: every shard exists, is a plain tar, and agrees with its index; with a manifest also
/// the shard sizes and member and sample counts. Indexes missing (shards written by
/// `webdataset` or `tarfile`) are built from the tar headers on first open and cached.
public enum ShardDataset {
    /// Video extensions a sample's video member may have (WebDataset names members
    /// `<key>.<ext>`; the extension is the decoder's hint).
    public static let videoExtensions = VideoReader.fileExtensions

    /// What opening the shards of a split found, besides the samples.
    public struct Report: Sendable {
        public var shards: [String]
        /// Indexes built from tar headers in this open (no `.idx` and no cached one), and how
        /// many of those could not be stored for the next open (read-only folder, no cache folder).
        public var indexesBuilt: Int
        public var indexesNotKept: Int = 0
        /// Keys with no video member, with the shard they are in (skipped, like bad videos).
        public var withoutVideo: [String]
    }

    // MARK: brace expansion

    /// Expands `{a..b}` ranges (zero-padded to the width of `a` when `a` starts with 0, as
    /// WebDataset's braceexpand does) and `{x,y}` lists, left to right; several groups give
    /// every combination in order.
    public static func expandBraces(_ pattern: String) throws -> [String] {
        guard let open = pattern.firstIndex(of: "{") else {
            if pattern.contains("}") { throw TarError(path: pattern, message: "unbalanced `}`") }
            return [pattern]
        }
        guard let close = pattern[open...].firstIndex(of: "}") else {
            throw TarError(path: pattern, message: "unbalanced `{`")
        }
        let head = String(pattern[..<open]), body = String(pattern[pattern.index(after: open)..<close])
        let tail = try expandBraces(String(pattern[pattern.index(after: close)...]))
        var items: [String]
        if let r = body.range(of: "..") {
            let a = String(body[..<r.lowerBound]), b = String(body[r.upperBound...])
            guard let lo = Int(a), let hi = Int(b), lo >= 0, hi >= lo else {
                throw TarError(path: pattern, message: "`{\(body)}` is not a range `{first..last}` of non-negative integers, first ≤ last")
            }
            guard hi - lo < 10_000_000 else { throw TarError(path: pattern, message: "`{\(body)}` names too many shards") }
            let width = a.count > 1 && a.hasPrefix("0") ? a.count : 0
            items = (lo...hi).map { n in
                let s = String(n)
                return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
            }
        } else {
            items = body.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        return items.flatMap { i in tail.map { head + i + $0 } }
    }

    // MARK: opening

    /// WebDataset's key and extension of a member: the key is the name up to the first dot of
    /// its last path component; nil for names without one (WebDataset ignores those too).
    static func keyAndExtension(_ name: String) -> (key: String, ext: String)? {
        let slash = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        guard let dot = name[slash...].firstIndex(of: ".") else { return nil }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]))
    }

    /// The shard paths `spec` names and the manifest, when it is one.
    public static func shardPaths(spec: String) throws -> (shards: [String], manifest: ShardManifest?) {
        if spec.hasSuffix(".json") {
            let m = try ShardManifest.read(spec)
            let dir = (spec as NSString).deletingLastPathComponent
            return (m.shards.map { (dir as NSString).appendingPathComponent($0.tar) }, m)
        }
        return (try expandBraces(spec), nil)
    }

    /// The samples of the shards `spec` names, in shard order and member order within a shard.
    /// Throws a `TarError` naming the shard for a missing shard, a truncated or compressed tar,
    /// an index that does not match its shard, a manifest that does not match the shards, or a
    /// sample whose `.cls` is missing or not an integer. `cacheDir` holds indexes built for
    /// shards in read-only folders.
    public static func open(spec: String, cacheDir: String?) throws -> (samples: [VideoSample], report: Report) {
        let (paths, manifest) = try shardPaths(spec: spec)
        guard !paths.isEmpty else { throw TarError(path: spec, message: "names no shards") }
        var report = Report(shards: paths, indexesBuilt: 0, withoutVideo: [])
        var samples: [VideoSample] = []
        for (si, shard) in paths.enumerated() {
            guard FileManager.default.fileExists(atPath: shard) else {
                throw TarError(path: shard, message: "missing shard (named by \(spec))")
            }
            let (index, built, kept) = try ShardIndex.load(shard: shard, cacheDir: cacheDir)
            if built { report.indexesBuilt += 1 }
            if built && !kept { report.indexesNotKept += 1 }
            let before = samples.count
            try samplesOf(shard: shard, index: index, into: &samples, withoutVideo: &report.withoutVideo)
            if let m = manifest?.shards[si] {
                if m.bytes != index.archiveSize || m.members != index.members.count || m.samples != samples.count - before {
                    throw TarError(path: shard, message: "does not match \(spec): the manifest says \(m.bytes) bytes, \(m.members) members, \(m.samples) samples; the shard has \(index.archiveSize) bytes, \(index.members.count) members, \(samples.count - before) samples")
                }
            }
        }
        if let m = manifest, m.samples != samples.count {
            throw TarError(path: spec, message: "the manifest counts \(m.samples) samples, its shards hold \(samples.count)")
        }
        return (samples, report)
    }

    /// Shards and indexes of a manifest whose SHA-256 differs from the manifest's (reads every
    /// byte: `aim-data check` does it, training does not).
    public static func checksumMismatches(manifest file: String) throws -> [String] {
        let m = try ShardManifest.read(file)
        let dir = (file as NSString).deletingLastPathComponent
        var bad: [String] = []
        for s in m.shards {
            for (name, want) in [(s.tar, s.sha256), (s.index, s.indexSHA256)] {
                let path = (dir as NSString).appendingPathComponent(name)
                let got = (try? SHA256.hex(ofFile: path)) ?? "unreadable"
                if got != want { bad.append("\(path): sha256 \(got), the manifest says \(want)") }
            }
        }
        return bad
    }

    /// Groups consecutive members with the same key into samples (WebDataset's rule) and reads
    /// each sample's label from its `.cls` member.
    static func samplesOf(shard: String, index: ShardIndex, into samples: inout [VideoSample], withoutVideo: inout [String]) throws {
        let fd = Glibc.open(shard, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw TarError(path: shard, message: "cannot open: \(String(cString: strerror(errno)))") }
        DataFileOpens.add()
        defer { close(fd) }
        var i = 0
        let m = index.members
        while i < m.count {
            guard let (key, _) = keyAndExtension(m[i].name) else { i += 1; continue }
            var video: TarMember? = nil, cls: TarMember? = nil
            while i < m.count, let (k, ext) = keyAndExtension(m[i].name), k == key {
                let e = ext.lowercased()
                if e == "cls" { cls = m[i] } else if video == nil && videoExtensions.contains(e) { video = m[i] }
                i += 1
            }
            guard let v = video else { withoutVideo.append("\(shard): \(key)"); continue }
            guard let c = cls else {
                throw TarError(path: shard, message: "sample \(key) has no \(key).cls member with its label")
            }
            guard c.size <= 64 else { throw TarError(path: shard, message: "\(c.name) is \(c.size) bytes, not a class index") }
            var buf = [UInt8](repeating: 0, count: Int(c.size))
            guard try preadAll(fd, &buf, offset: c.offset, path: shard) == buf.count,
                  let label = Int(String(decoding: buf, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), label >= 0 else {
                throw TarError(path: shard, message: "\(c.name) does not hold a non-negative integer label")
            }
            samples.append(VideoSample(path: shard + "/" + v.name, label: label,
                                       range: ArchiveRange(archive: shard, offset: v.offset, size: v.size)))
        }
    }
}
