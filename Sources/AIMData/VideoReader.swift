import CFFmpeg
import Foundation

/// FFmpeg's own log lines would flood a training log with codec chatter (`mmco: unref short
/// failure` …); we report each problem once ourselves, so its logger is silenced.
let silenceFFmpeg: Void = { av_log_set_level(aim_av_log_quiet()) }()

/// Reads the frames of one video file through libavformat/libavcodec/libswscale.
///
/// Frame index `i` means the i-th decoded frame in presentation order, as decord's
/// `VideoReader.get_batch` gives it. On open the demuxer reads every packet of the video stream
/// (no decoding) to build a presentation-timestamp index, as decord does; with it a request
/// seeks to the keyframe before the first wanted frame and decodes forward. Files whose
/// timestamps are missing or repeated are decoded from the start instead (always correct, slower).
public final class VideoReader {
    /// File extensions taken for videos where only the name can tell (folders searched by
    /// aim-predict and aim-data list, members of a shard), lower-case.
    public static let fileExtensions: Set<String> = ["mp4", "m4v", "mov", "avi", "mkv", "webm", "flv", "mpg", "mpeg", "ts", "ogv", "wmv", "3gp", "gif"]

    public enum FrameCountSource: String, Sendable {
        /// The container's frame count, confirmed by the packet index.
        case container
        /// The number of video packets (the container has no count or a wrong one).
        case packetIndex
        /// A full decode pass (timestamps unusable).
        case decodePass
        /// The count of an earlier decode pass over the same file (`knownFrameCount`).
        case remembered
    }

    public let path: String
    /// Where the bytes are when the video is a member of a shard (nil: the file at `path`).
    public let range: ArchiveRange?
    public let threads: Int
    public private(set) var width = 0
    public private(set) var height = 0
    public private(set) var frameCount = 0
    public private(set) var frameCountSource = FrameCountSource.container
    public private(set) var codecName = ""
    public private(set) var formatName = ""
    /// Average frame rate from the container (0 when unknown).
    public private(set) var fps = 0.0
    /// How many `frames(at:)` requests were served by seeking, and how many by decoding from
    /// the first frame (timestamps unusable, or the seek landed after the wanted frame).
    public private(set) var seekDecodes = 0
    public private(set) var sequentialDecodes = 0

    private var fmt: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var sws: OpaquePointer?
    /// The context, YUV matrix and range `sws` was last set to (`useFrameColorspace`).
    private var swsColorspace: (context: OpaquePointer, matrix: Int32, range: Int32)?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var streamIndex: Int32 = -1
    // Presentation timestamps sorted ascending (index i = frame i) and the keyframes' timestamps.
    private var sortedPts: [Int64] = []
    private var ptsToIndex: [Int64: Int] = [:]
    private var keyPts: [Int64] = []
    private var indexUsable = false
    private var scratch: [UInt8] = []
    // Reading from a shard: the range state the I/O callbacks see, its descriptor, the context.
    private var rangeIO: UnsafeMutablePointer<aim_range_io>?
    private var ownedFD: Int32 = -1
    private var avio: UnsafeMutablePointer<AVIOContext>?

    /// Opens `path` and counts its frames. Throws `VideoError` naming the path and the reason.
    /// `knownFrameCount`, a count an earlier open got by a decode pass, replaces that pass when
    /// the timestamps still cannot index the file.
    /// With `range`, the video is that byte range of a tar shard, read in place.
    public init(path: String, threads: Int = 1, knownFrameCount: Int? = nil, range: ArchiveRange? = nil) throws {
        _ = silenceFFmpeg
        self.path = path
        self.range = range
        self.threads = max(1, threads)
        if let range {
            try openRange(range)
        } else {
            if try Self.checkRegularFile(path) == 0 { throw VideoError.empty(path: path) }
            DataFileOpens.add()
        }
        try openDemuxerAndDecoder()
        try buildIndex(knownFrameCount: knownFrameCount)
    }

    /// The size of the regular file at `path` (links followed), or the VideoError saying what the
    /// path is instead. Only stat calls: nothing is opened, since opening a FIFO for reading
    /// blocks until a writer comes, and a device such as /dev/zero never ends.
    static func checkRegularFile(_ path: String) throws -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            switch e {
            case ENOENT, ENOTDIR: throw VideoError.missing(path: path)  // also a dangling link, a path through a file
            case ELOOP: throw VideoError.notAFile(path: path, what: "symbolic link loop")
            default: throw VideoError.notAFile(path: path, what: "cannot look up the file: \(String(cString: strerror(e)))")
            }
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw VideoError.notAFile(path: path, what: "a directory, not a video file")
        default: throw VideoError.notAFile(path: path, what: "not a regular file (device, FIFO or socket)")
        }
        // Files of /proc and /sys are "regular" files of size 0 (or a made-up size) that are not on
        // disk: /proc/self/mem is no empty file. (statfs, which would name the file system, is
        // not in Swift's Glibc module; the real path, links resolved, says where it is.)
        if let real = realpath(path, nil) {
            defer { free(real) }
            let p = String(cString: real)
            if p.hasPrefix("/proc/") || p.hasPrefix("/sys/") {
                throw VideoError.notAFile(path: path, what: "not a regular file (a /proc or /sys pseudo-file)")
            }
        }
        return Int64(st.st_size)
    }

    deinit {
        closeAll()
        rangeIO?.deallocate()
        if ownedFD >= 0 { close(ownedFD) }
    }

    /// Takes the shard's descriptor and checks that a tar header with the member's size sits
    /// right before the range and that the shard holds the whole range: an index that does not
    /// match its shard, or a cut-off shard, is named here instead of passing for a corrupt video.
    private func openRange(_ r: ArchiveRange) throws {
        if r.size == 0 { throw VideoError.empty(path: path) }
        let (fd, owned) = try ShardFiles.shared.descriptor(r.archive)
        if owned { ownedFD = fd }
        var h = [UInt8](repeating: 0, count: Tar.block)
        let got = r.offset >= Int64(Tar.block) ? ((try? preadAll(fd, &h, offset: r.offset - Int64(Tar.block), path: r.archive)) ?? 0) : 0
        guard got == Tar.block, let size = Tar.headerSize(h), size == r.size || r.size > Tar.maxOctalSize else {
            throw VideoError.undecodable(path: path, reason: "the shard index does not match \(r.archive): no tar header of a \(r.size)-byte member before byte \(r.offset)")
        }
        var end = [UInt8](repeating: 0, count: 1)
        if (try? preadAll(fd, &end, offset: r.offset + r.size - 1, path: r.archive)) != 1 {
            throw VideoError.undecodable(path: path, reason: "the shard \(r.archive) ends before byte \(r.offset + r.size) (truncated)")
        }
        rangeIO = .allocate(capacity: 1)
        rangeIO!.initialize(to: aim_range_io(fd: fd, base: r.offset, size: r.size, pos: 0))
    }

    private func closeAll() {
        if avio != nil { aim_range_avio_free(&avio) }
        if sws != nil { sws_freeContext(sws); sws = nil }
        if codec != nil { avcodec_free_context(&codec) }
        if fmt != nil { avformat_close_input(&fmt) }
        if packet != nil { av_packet_free(&packet) }
        if frame != nil { av_frame_free(&frame) }
    }

    private func ffError(_ rc: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 128)
        return String(cString: aim_av_err2str(rc, &buf, 128))
    }

    private func openDemuxerAndDecoder() throws {
        var ctx: UnsafeMutablePointer<AVFormatContext>?
        if let io = rangeIO {
            io.pointee.pos = 0
            ctx = avformat_alloc_context()
            guard let c = ctx else { throw VideoError.undecodable(path: path, reason: "cannot allocate a format context") }
            avio = aim_range_avio(io)
            guard let a = avio else {
                avformat_free_context(c)
                throw VideoError.undecodable(path: path, reason: "cannot allocate an I/O context")
            }
            c.pointee.pb = a
            c.pointee.flags |= aim_avfmt_flag_custom_io()
        }
        // With a custom context the name only helps the format probe (by its extension).
        var rc = avformat_open_input(&ctx, path, nil, nil)
        guard rc == 0, let f = ctx else { throw VideoError.notAVideo(path: path, reason: ffError(rc)) }
        fmt = f
        formatName = String(cString: f.pointee.iformat.pointee.name)
        // The "tty" demuxer turns any .txt/.nfo file into an ANSI-art "video".
        if formatName == "tty" { throw VideoError.notAVideo(path: path, reason: "text file") }
        // An image (png_pipe, jpeg_pipe …, image2) opens as a one-frame "video": every clip would be
        // that frame repeated, trained on silently.
        if formatName.hasSuffix("_pipe") || formatName == "image2" {
            throw VideoError.notAVideo(path: path, reason: "a still image (\(formatName))")
        }
        rc = avformat_find_stream_info(f, nil)
        if rc < 0 { throw VideoError.notAVideo(path: path, reason: ffError(rc)) }
        var hasAudio = false
        for i in 0..<Int(f.pointee.nb_streams) {
            guard let st = f.pointee.streams[i] else { continue }
            let type = st.pointee.codecpar.pointee.codec_type
            if type == AVMEDIA_TYPE_AUDIO { hasAudio = true }
            // Cover art in audio files is a one-picture "video" stream; it is not a video.
            if type == AVMEDIA_TYPE_VIDEO && (st.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) == 0 && streamIndex < 0 {
                streamIndex = Int32(i)
            }
        }
        if streamIndex < 0 {
            throw hasAudio ? VideoError.audioOnly(path: path) : VideoError.noVideoStream(path: path)
        }
        let st = f.pointee.streams[Int(streamIndex)]!
        let par = st.pointee.codecpar!
        codecName = String(cString: avcodec_get_name(par.pointee.codec_id))
        if par.pointee.codec_id == AV_CODEC_ID_ANSI || par.pointee.codec_id == AV_CODEC_ID_NONE {
            throw VideoError.notAVideo(path: path, reason: "codec \(codecName)")
        }
        guard let dec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw VideoError.unsupportedCodec(path: path, codec: codecName)
        }
        codec = avcodec_alloc_context3(dec)
        guard let c = codec else { throw VideoError.undecodable(path: path, reason: "cannot allocate a decoder") }
        avcodec_parameters_to_context(c, par)
        c.pointee.thread_count = Int32(threads)
        rc = avcodec_open2(c, dec, nil)
        if rc < 0 { throw VideoError.undecodable(path: path, reason: "cannot open \(codecName) decoder: \(ffError(rc))") }
        width = Int(par.pointee.width); height = Int(par.pointee.height)
        if width <= 0 || height <= 0 { throw VideoError.undecodable(path: path, reason: "frame size \(width)x\(height)") }
        let r = st.pointee.avg_frame_rate
        fps = r.den != 0 ? Double(r.num) / Double(r.den) : 0
        packet = av_packet_alloc()
        frame = av_frame_alloc()
    }

    /// Reads every packet of the video stream once (no decoding) and fixes the frame count.
    private func buildIndex(knownFrameCount: Int?) throws {
        guard let f = fmt, let pkt = packet else { return }
        var pts: [Int64] = []
        var keys: [Int64] = []
        var allValid = true
        let noPts = aim_av_nopts_value()
        while av_read_frame(f, pkt) >= 0 {
            // Packets flagged discard (e.g. cut by an MP4 edit list) never come out of the decoder.
            if pkt.pointee.stream_index == streamIndex && (pkt.pointee.flags & aim_pkt_flag_discard()) == 0 {
                let p = pkt.pointee.pts
                if p == noPts { allValid = false }
                pts.append(p)
                if (pkt.pointee.flags & aim_pkt_flag_key()) != 0 { keys.append(p) }
            }
            av_packet_unref(pkt)
        }
        let distinct = Set(pts)
        indexUsable = allValid && !pts.isEmpty && distinct.count == pts.count && !keys.isEmpty
        let declared = Int(f.pointee.streams[Int(streamIndex)]!.pointee.nb_frames)
        if indexUsable {
            sortedPts = pts.sorted()
            for (i, p) in sortedPts.enumerated() { ptsToIndex[p] = i }
            keyPts = keys.sorted()
            if declared > 0 && declared > pts.count {
                throw VideoError.truncated(path: path, expected: declared, decoded: pts.count)
            }
            if declared <= 0, let expected = framesPromisedByDuration(packets: pts.count, firstPts: sortedPts[0], lastPts: sortedPts[sortedPts.count - 1]) {
                throw VideoError.truncated(path: path, expected: expected, decoded: pts.count)
            }
            frameCount = pts.count
            frameCountSource = declared == pts.count ? .container : .packetIndex
        } else if let known = knownFrameCount, known > 0 {
            frameCount = known
            frameCountSource = .remembered
        } else {
            frameCount = try decodeSequential(wanted: [], countOnly: true, into: nil, outW: 0, outH: 0)
            frameCountSource = .decodePass
            if declared > 0 && declared > frameCount {
                throw VideoError.truncated(path: path, expected: declared, decoded: frameCount)
            }
        }
        if frameCount == 0 { throw VideoError.undecodable(path: path, reason: "no frame decodes") }
    }

    /// For a container that states no frame count (Matroska / WebM) but a duration in its header:
    /// nil when the packets reach (nearly) that duration, else about how many frames it promised.
    /// Why: a Matroska file cut in half still opened, and 7 of its 16 frames were trained on. The
    /// packets' time span is compared, not a count (duration × average rate is no count for a
    /// variable frame rate); durations FFmpeg only estimated (from the bitrate or the last
    /// timestamps, which a cut file also moves) are not used.
    private func framesPromisedByDuration(packets: Int, firstPts: Int64, lastPts: Int64) -> Int? {
        guard let f = fmt, f.pointee.duration_estimation_method == AVFMT_DURATION_FROM_STREAM, packets > 1, lastPts > firstPts else { return nil }
        let st = f.pointee.streams[Int(streamIndex)]!.pointee
        let noPts = aim_av_nopts_value()
        let tb = Double(st.time_base.num) / Double(st.time_base.den)
        let declared = st.duration != noPts && st.duration > 0 ? Double(st.duration) * tb
            : f.pointee.duration != noPts && f.pointee.duration > 0 ? Double(f.pointee.duration) / 1e6 : 0   // AV_TIME_BASE
        // Up to the last frame's end: its timestamp plus one interval (packet durations are often
        // unset), measured from 0 — a stream starting later (an offset copied from its source)
        // then reaches further, never less far, than a duration counted from its first frame.
        let interval = Double(lastPts - firstPts) * tb / Double(packets - 1)
        let covered = Double(lastPts - min(firstPts, 0)) * tb + interval
        // A tenth of the duration, and at least two frames' time, may be missing (rounding, uneven
        // intervals): a file is cut when more is.
        guard declared > 0, declared - covered > max(declared / 10, 2 * interval) else { return nil }
        return Int((Double(packets) * declared / covered).rounded())
    }

    /// Decodes the frames at `indices` (any order, repeats allowed) as RGB24, scaled by
    /// libswscale to `size` (width, height) when given, else at the stored size.
    public func frames(at indices: [Int], size: (width: Int, height: Int)? = nil) throws -> FrameStack {
        let outW = size?.width ?? width, outH = size?.height ?? height
        guard outW > 0, outH > 0 else { throw VideoError.badRequest(path: path, reason: "output size \(outW)x\(outH)") }
        if indices.isEmpty { return FrameStack(count: 0, height: outH, width: outW) }
        if let bad = indices.first(where: { $0 < 0 || $0 >= frameCount }) {
            throw VideoError.badRequest(path: path, reason: "frame \(bad) requested, video has \(frameCount)")
        }
        let wanted = Array(Set(indices)).sorted()
        let slot = Dictionary(uniqueKeysWithValues: wanted.enumerated().map { ($1, $0) })
        var unique = FrameStack(count: wanted.count, height: outH, width: outW)
        var done = false
        if indexUsable {
            done = try unique.pixels.withUnsafeMutableBufferPointer { buf in
                try decodeWithSeek(wanted: wanted, slot: slot, into: buf.baseAddress!, outW: outW, outH: outH)
            }
        }
        if done { seekDecodes += 1 } else {
            sequentialDecodes += 1
            let got = try unique.pixels.withUnsafeMutableBufferPointer { buf in
                try decodeSequential(wanted: wanted, countOnly: false, into: buf.baseAddress!, outW: outW, outH: outH)
            }
            if got <= wanted.last! {
                throw VideoError.truncated(path: path, expected: frameCount, decoded: got)
            }
        }
        return unique.selecting(indices.map { slot[$0]! })
    }

    // MARK: decoding

    /// Back to the first frame by reopening: a seek to the first timestamp is not always exact
    /// (in MPEG-TS it landed past frames, or at the end: a whole 40-frame .ts decoded 0 frames
    /// and was refused as truncated), and this is the sequential fallback, which decodes far more
    /// than an open costs.
    private func rewindToStart() throws {
        guard fmt != nil else { return }
        let keepCount = frameCount, keepSource = frameCountSource
        closeAll(); streamIndex = -1
        try openDemuxerAndDecoder()
        frameCount = keepCount; frameCountSource = keepSource
    }

    /// Sends packets until the decoder yields a frame or the stream ends (then drains).
    /// Returns false at the end of the stream.
    private func nextFrame(eof: inout Bool) -> Bool {
        guard let f = fmt, let c = codec, let pkt = packet, let fr = frame else { return false }
        while true {
            let r = avcodec_receive_frame(c, fr)
            if r == 0 { return true }
            if r == aim_averror_eof() { return false }
            if r != aim_averror_eagain() { return false }
            if eof { return false }
            if av_read_frame(f, pkt) < 0 {
                eof = true
                avcodec_send_packet(c, nil)  // drain the frames still inside the decoder
                continue
            }
            if pkt.pointee.stream_index == streamIndex {
                // A damaged packet is skipped; the missing frames show up as a short count.
                _ = avcodec_send_packet(c, pkt)
            }
            av_packet_unref(pkt)
        }
    }

    /// The YUV matrix and range FFmpeg's scale filter (decord's path) takes with its defaults
    /// (`in_color_matrix=auto`): the frame's tagged matrix, BT.601 when untagged or unknown to
    /// libswscale, and the frame's tagged range. libswscale alone would read a BT.709 video as
    /// BT.601 (colours off by up to 40 levels in saturated areas).
    private func useFrameColorspace(_ s: OpaquePointer, _ fr: UnsafeMutablePointer<AVFrame>) {
        var matrix = Int32(fr.pointee.colorspace.rawValue)
        if matrix < 1 || matrix > 10 || matrix == Int32(AVCOL_SPC_YCGCO.rawValue) { matrix = Int32(AVCOL_SPC_BT470BG.rawValue) }
        let range = Int32(fr.pointee.color_range.rawValue)
        if let last = swsColorspace, last.context == s, last.matrix == matrix, last.range == range { return }
        var inverse: UnsafeMutablePointer<Int32>?, table: UnsafeMutablePointer<Int32>?
        var srcFull: Int32 = 0, dstFull: Int32 = 0, brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
        guard sws_getColorspaceDetails(s, &inverse, &srcFull, &table, &dstFull, &brightness, &contrast, &saturation) >= 0 else { return }
        if fr.pointee.color_range != AVCOL_RANGE_UNSPECIFIED { srcFull = fr.pointee.color_range == AVCOL_RANGE_JPEG ? 1 : 0 }
        let coefficients = sws_getCoefficients(matrix)
        _ = sws_setColorspaceDetails(s, coefficients, srcFull, coefficients, dstFull, brightness, contrast, saturation)
        swsColorspace = (s, matrix, range)
    }

    private func convert(into dst: UnsafeMutablePointer<UInt8>, outW: Int, outH: Int) throws {
        guard let fr = frame else { return }
        let srcW = fr.pointee.width, srcH = fr.pointee.height
        let srcFmt = AVPixelFormat(rawValue: fr.pointee.format)
        // Bicubic is the default of FFmpeg's scale filter, which decord's decoding goes through.
        sws = sws_getCachedContext(sws, srcW, srcH, srcFmt, Int32(outW), Int32(outH), AV_PIX_FMT_RGB24,
                                   SWS_BICUBIC, nil, nil, nil)
        guard let s = sws else {
            throw VideoError.undecodable(path: path, reason: "cannot convert pixel format \(fr.pointee.format) to RGB")
        }
        useFrameColorspace(s, fr)
        // libswscale's SIMD paths write past the end of rows that are not 64-byte multiples, so
        // it writes into a padded scratch image whose rows are then copied out.
        let row = outW * 3, stride = (row + 63) & ~63
        if scratch.count < stride * outH + 256 { scratch = [UInt8](repeating: 0, count: stride * outH + 256) }
        var dstPtrs: [UnsafeMutablePointer<UInt8>?] = [nil, nil, nil, nil]
        var dstStride: [Int32] = [Int32(stride), 0, 0, 0]
        withUnsafePointer(to: &fr.pointee.data) { dataPtr in
            withUnsafePointer(to: &fr.pointee.linesize) { linePtr in
                dataPtr.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { src in
                    linePtr.withMemoryRebound(to: Int32.self, capacity: 8) { srcStride in
                        scratch.withUnsafeMutableBufferPointer { sc in
                            dstPtrs[0] = sc.baseAddress!
                            _ = sws_scale(s, src, srcStride, 0, srcH, &dstPtrs, &dstStride)
                            for y in 0..<outH { (dst + y * row).update(from: sc.baseAddress! + y * stride, count: row) }
                        }
                    }
                }
            }
        }
    }

    /// Seeks to the keyframe at or before the first wanted frame and decodes forward, placing
    /// each frame by its timestamp. Returns false when the result cannot be trusted (unknown
    /// timestamp, or the demuxer landed after the wanted frame); the caller then decodes from
    /// the start.
    private func decodeWithSeek(wanted: [Int], slot: [Int: Int], into out: UnsafeMutablePointer<UInt8>,
                                outW: Int, outH: Int) throws -> Bool {
        guard let f = fmt, let c = codec, let fr = frame else { return false }
        let firstPts = sortedPts[wanted[0]]
        var key = keyPts[0]
        var lo = 0, hi = keyPts.count - 1
        while lo <= hi {  // last keyframe with pts <= firstPts
            let mid = (lo + hi) / 2
            if keyPts[mid] <= firstPts { key = keyPts[mid]; lo = mid + 1 } else { hi = mid - 1 }
        }
        if av_seek_frame(f, streamIndex, key, aim_avseek_flag_backward()) < 0 { return false }
        avcodec_flush_buffers(c)
        let fb = outW * outH * 3
        var remaining = Set(wanted)
        var eof = false
        var first = true
        let last = wanted.last!
        while !remaining.isEmpty, nextFrame(eof: &eof) {
            defer { av_frame_unref(fr) }
            guard let idx = ptsToIndex[fr.pointee.best_effort_timestamp] ?? ptsToIndex[fr.pointee.pts] else {
                return false
            }
            if first { first = false; if idx > wanted[0] { return false } }
            if remaining.contains(idx) {
                try convert(into: out + slot[idx]! * fb, outW: outW, outH: outH)
                remaining.remove(idx)
            }
            if idx > last && !remaining.isEmpty { return false }
        }
        return remaining.isEmpty
    }

    /// Decodes from the first frame, numbering frames in output order. Returns the number of
    /// frames decoded (all of them when `countOnly`, else up to the last wanted one).
    private func decodeSequential(wanted: [Int], countOnly: Bool, into out: UnsafeMutablePointer<UInt8>?,
                                  outW: Int, outH: Int) throws -> Int {
        try rewindToStart()
        guard let fr = frame else { return 0 }
        let fb = outW * outH * 3
        var want: [Int: Int] = [:]
        for (k, w) in wanted.enumerated() { want[w] = k }
        let last = wanted.last ?? -1
        var i = 0
        var eof = false
        while nextFrame(eof: &eof) {
            defer { av_frame_unref(fr) }
            if let k = want[i], let out { try convert(into: out + k * fb, outW: outW, outH: outH) }
            i += 1
            if !countOnly && i > last { break }
        }
        return i
    }
}
