import AIMConfig
import AIMTensor
import Foundation

/// Writes a split's videos, bytes unchanged, into tar shards in the WebDataset layout: per
/// sample `<key>.cls` (the label as decimal text), `<key>.json` (the original path and
/// annotation fields) and `<key>.<original extension>` (the video), in that (alphabetical)
/// order; shards `DIR/<split>-000000.tar …` of at most `shardSize` bytes (a single bigger
/// sample gets a shard of its own), each with its `.idx`, and `DIR/<split>-manifest.json`.
/// A source video that does not open and decode (first and last frame, as `aim-data check`)
/// is skipped and listed in the manifest, as the loader skips it.
public enum ShardWriter {
    public struct Progress: Sendable {
        public let done: Int
        public let total: Int
        public let written: Int
        public let skipped: Int
        public let shards: Int
        public let bytes: Int64
    }

    /// Keys as WebDataset reads them: the file name without its extension, no dots (WebDataset
    /// splits key and extension at the first dot) and no slashes or line breaks; a repeated key
    /// gets `_2`, `_3` … in annotation order.
    public static func keys(for samples: [VideoSample]) -> [String] {
        var used: [String: Int] = [:]
        return samples.map { s in
            let base = ((s.path as NSString).lastPathComponent as NSString).deletingPathExtension
            var k = String(base.unicodeScalars.map { u -> Character in
                u == "." || u == "/" || u == "\\" || u.value < 0x20 ? "_" : Character(u)
            })
            if k.isEmpty { k = "video" }
            let n = (used[k] ?? 0) + 1
            used[k] = n
            if n > 1 {
                var alt = "\(k)_\(n)"
                while used[alt] != nil { alt += "_" }
                used[alt] = 1
                k = alt
            }
            return k
        }
    }

    /// The video member's extension: the source's, lower-cased ("mp4" when it has none).
    static func videoExtension(_ path: String) -> String {
        let e = (path as NSString).pathExtension.lowercased()
        return e.isEmpty || e.contains(".") ? "mp4" : e
    }

    static func sampleJSON(_ s: VideoSample) -> String {
        var f = ["\"path\": \(jsonString(s.path))", "\"label\": \(s.label)"]
        if let c = s.className { f.append("\"class\": \(jsonString(c))") }
        if let l = s.line { f.append("\"line\": \(l)") }
        return "{" + f.joined(separator: ", ") + "}"
    }

    /// Why a source video cannot be used (nil when it opens and its first and last frames decode).
    static func problem(_ path: String) -> String? {
        do {
            let r = try VideoReader(path: path)
            _ = try r.frames(at: [0, r.frameCount - 1], size: (width: 16, height: 16))
            return nil
        } catch let e as VideoError {
            return e.reason
        } catch {
            return "\(error)"
        }
    }

    /// Shards `samples` into `dir` (created if needed; refused when it already holds shards of
    /// `split`). `threads` source videos are checked at once; `progress` is called after each
    /// sample from the calling thread. The manifest is written last, and only when a video was
    /// written; a write that fails removes the shards it made, so the same command can run again.
    @discardableResult
    public static func write(samples: [VideoSample], split: String, to dir: String, shardSize: Int64,
                             threads: Int = 2, progress: (Progress) -> Void = { _ in }) throws -> ShardManifest {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            // A refusal: nothing begun, nothing removed.
            throw TarError(path: dir, message: "cannot create the folder: \(FileOutput.whyFolderCannotBeMade(dir, error)); nothing was written")
        }
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        if let old = existing.first(where: { ($0.hasPrefix("\(split)-") && ($0.hasSuffix(".tar") || $0.hasSuffix(".idx")))
                                         || $0 == ShardManifest.fileName(split: split) }) {
            throw TarError(path: dir, message: "already holds \(split) shards (\(old)); they were left as they are and nothing was written: remove them or choose another --out")
        }
        do {
            return try writeShards(samples: samples, split: split, to: dir, shardSize: shardSize, threads: threads, progress: progress)
        } catch {
            // Nothing of this split was there before (checked above): whatever is there now is this run's, unfinished.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            where name.hasPrefix("\(split)-") && (name.hasSuffix(".tar") || name.hasSuffix(".idx") || name.contains(".tmp")) {
                try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(name))
            }
            throw error
        }
    }

    private static func writeShards(samples: [VideoSample], split: String, to dir: String, shardSize: Int64,
                                    threads: Int, progress: (Progress) -> Void) throws -> ShardManifest {
        let keys = keys(for: samples)
        var shards: [ShardManifest.Shard] = []
        var skipped: [ShardManifest.Skipped] = []
        var writer: TarWriter? = nil
        var inShard = 0
        var written = 0
        var bytesDone: Int64 = 0
        func shardName(_ i: Int) -> String { "\(split)-\(String(format: "%06d", i))" }
        func close() throws {
            guard let w = writer else { return }
            try w.finish()
            let name = shardName(shards.count)
            let idx = ShardIndex(archiveSize: w.bytesWritten, members: w.members)
            let idxText = idx.text()
            try FileOutput.write(idxText, to: (dir as NSString).appendingPathComponent(name + ".idx"))
            shards.append(.init(tar: name + ".tar", index: name + ".idx", samples: inShard, members: w.members.count,
                                bytes: w.bytesWritten, sha256: w.sha256Hex, indexSHA256: SHA256.hex(Array(idxText.utf8))))
            bytesDone += w.bytesWritten
            writer = nil
            inShard = 0
        }
        // Sources are checked `chunk` at a time in parallel, then written in annotation order.
        let chunk = max(1, threads) * 4
        var start = 0
        while start < samples.count {
            let end = min(samples.count, start + chunk)
            var problems = [String?](repeating: nil, count: end - start)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: end - start) { j in
                let p = problem(samples[start + j].path)
                lock.lock(); problems[j] = p; lock.unlock()
            }
            for i in start..<end {
                let s = samples[i]
                var reason = problems[i - start]
                var video: [UInt8] = []
                if reason == nil {
                    if let d = FileManager.default.contents(atPath: s.path) { video = [UInt8](d) } else { reason = "cannot read the file" }
                }
                if let reason {
                    skipped.append(.init(path: s.path, reason: reason))
                } else {
                    let k = keys[i]
                    let entries: [(String, [UInt8])] = [
                        ("\(k).cls", Array(String(s.label).utf8)),
                        ("\(k).json", Array(sampleJSON(s).utf8)),
                        ("\(k).\(videoExtension(s.path))", video),
                    ].sorted { $0.0 < $1.0 }
                    let need = entries.reduce(Int64(0)) { $0 + TarWriter.entryBytes(name: $1.0, size: Int64($1.1.count)) }
                    // The finished shard: these members, two end blocks, padded to a whole record.
                    let rec = Int64(Tar.record)
                    if let w = writer, inShard > 0, (w.bytesWritten + need + Int64(2 * Tar.block) + rec - 1) / rec * rec > shardSize { try close() }
                    if writer == nil {
                        writer = try TarWriter(path: (dir as NSString).appendingPathComponent(shardName(shards.count) + ".tar"))
                    }
                    for (name, data) in entries { try writer!.add(name: name, data: data) }
                    inShard += 1
                    written += 1
                }
                progress(Progress(done: i + 1, total: samples.count, written: written, skipped: skipped.count,
                                  shards: shards.count + (writer == nil ? 0 : 1), bytes: bytesDone + (writer?.bytesWritten ?? 0)))
            }
            start = end
        }
        try close()
        let pattern = shards.isEmpty ? "" : shards.count == 1 ? shards[0].tar
            : "\(split)-{\(String(format: "%06d", 0))..\(String(format: "%06d", shards.count - 1))}.tar"
        let manifest = ShardManifest(split: split, pattern: pattern, samples: written, shards: shards, skipped: skipped)
        // No video usable: no manifest (it would name no shard, and refuse a rerun into this folder).
        guard written > 0 else { return manifest }
        try FileOutput.write(manifest.json(), to: (dir as NSString).appendingPathComponent(ShardManifest.fileName(split: split)))
        return manifest
    }
}
