import CFFmpeg
import Foundation

public struct VideoWriterError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): cannot write video: \(reason)" }
}

/// Encodes RGB24 frames into a real video file with libavcodec/libavformat (the container
/// follows the file extension). Used by `aim-data synth` and by the tests that need files of
/// each codec and container.
public final class VideoWriter {
    public let path: String
    public let width: Int
    public let height: Int
    private var fmt: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var stream: UnsafeMutablePointer<AVStream>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var sws: OpaquePointer?
    private var nextPts: Int64 = 0
    private var finished = false

    /// True when this FFmpeg build has an encoder of that name (e.g. "libx264", "mpeg4").
    public static func hasEncoder(_ name: String) -> Bool { avcodec_find_encoder_by_name(name) != nil }

    /// - Parameters:
    ///   - encoder: an FFmpeg encoder name: "mpeg4", "mjpeg", "libx264", "libvpx-vp9", "ffv1" …
    ///   - gop: keyframe interval; `bFrames`: B-frames between references (reordered output).
    public init(path: String, encoder: String, width: Int, height: Int, fps: Int = 25,
                gop: Int = 12, bFrames: Int = 0, bitRate: Int = 0) throws {
        _ = silenceFFmpeg
        self.path = path; self.width = width; self.height = height
        func fail(_ r: String) -> VideoWriterError { VideoWriterError(path: path, reason: r) }
        var ctx: UnsafeMutablePointer<AVFormatContext>?
        guard avformat_alloc_output_context2(&ctx, nil, nil, path) >= 0, let f = ctx else {
            throw fail("no container for this file extension")
        }
        fmt = f
        guard let enc = avcodec_find_encoder_by_name(encoder) else { throw fail("encoder \(encoder) not in this FFmpeg") }
        guard let st = avformat_new_stream(f, nil) else { throw fail("cannot add a stream") }
        stream = st
        guard let c = avcodec_alloc_context3(enc) else { throw fail("cannot allocate encoder") }
        codec = c
        c.pointee.width = Int32(width); c.pointee.height = Int32(height)
        c.pointee.time_base = AVRational(num: 1, den: Int32(fps))
        c.pointee.framerate = AVRational(num: Int32(fps), den: 1)
        c.pointee.gop_size = Int32(gop)
        c.pointee.max_b_frames = Int32(bFrames)
        c.pointee.pix_fmt = enc.pointee.pix_fmts?.pointee ?? AV_PIX_FMT_YUV420P
        if bitRate > 0 { c.pointee.bit_rate = Int64(bitRate) }
        c.pointee.thread_count = 1
        if encoder == "libx264" { av_opt_set(c.pointee.priv_data, "preset", "veryfast", 0) }
        if encoder == "libvpx-vp9" {
            av_opt_set(c.pointee.priv_data, "deadline", "realtime", 0)
            av_opt_set(c.pointee.priv_data, "cpu-used", "8", 0)
        }
        if (f.pointee.oformat.pointee.flags & aim_avfmt_globalheader()) != 0 {
            c.pointee.flags |= aim_codec_flag_global_header()
        }
        var rc = avcodec_open2(c, enc, nil)
        guard rc >= 0 else { throw fail("cannot open encoder \(encoder) (error \(rc))") }
        avcodec_parameters_from_context(st.pointee.codecpar, c)
        st.pointee.time_base = c.pointee.time_base
        if (f.pointee.oformat.pointee.flags & aim_avfmt_nofile()) == 0 {
            rc = avio_open(&f.pointee.pb, path, aim_avio_flag_write())
            guard rc >= 0 else { throw fail("cannot create the file (error \(rc))") }
        }
        rc = avformat_write_header(f, nil)
        guard rc >= 0 else { throw fail("cannot write the container header (error \(rc))") }
        frame = av_frame_alloc()
        packet = av_packet_alloc()
        guard let fr = frame else { throw fail("cannot allocate a frame") }
        fr.pointee.format = c.pointee.pix_fmt.rawValue
        fr.pointee.width = Int32(width); fr.pointee.height = Int32(height)
        guard av_frame_get_buffer(fr, 0) >= 0 else { throw fail("cannot allocate frame buffers") }
        sws = sws_getContext(Int32(width), Int32(height), AV_PIX_FMT_RGB24, Int32(width), Int32(height),
                             c.pointee.pix_fmt, SWS_BICUBIC, nil, nil, nil)
        guard sws != nil else { throw fail("cannot convert RGB to the encoder's pixel format") }
    }

    deinit {
        if !finished { try? finish() }
        if sws != nil { sws_freeContext(sws) }
        if codec != nil { avcodec_free_context(&codec) }
        if frame != nil { av_frame_free(&frame) }
        if packet != nil { av_packet_free(&packet) }
        if let f = fmt {
            if (f.pointee.oformat.pointee.flags & aim_avfmt_nofile()) == 0 { avio_closep(&f.pointee.pb) }
            avformat_free_context(f)
        }
    }

    /// Appends one RGB24 frame of `width*height*3` bytes.
    public func append(rgb: [UInt8]) throws {
        precondition(rgb.count == width * height * 3, "VideoWriter: frame of \(rgb.count) bytes, expected \(width * height * 3)")
        guard let fr = frame, let c = codec else { return }
        guard av_frame_make_writable(fr) >= 0 else { throw VideoWriterError(path: path, reason: "frame not writable") }
        rgb.withUnsafeBufferPointer { src in
            var srcPtr: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
            var srcStride: [Int32] = [Int32(width * 3), 0, 0, 0]
            withUnsafeMutablePointer(to: &fr.pointee.data) { dataPtr in
                withUnsafeMutablePointer(to: &fr.pointee.linesize) { linePtr in
                    dataPtr.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dst in
                        linePtr.withMemoryRebound(to: Int32.self, capacity: 8) { stride in
                            _ = sws_scale(sws, &srcPtr, &srcStride, 0, Int32(height), dst, stride)
                        }
                    }
                }
            }
        }
        fr.pointee.pts = nextPts
        nextPts += 1
        let rc = avcodec_send_frame(c, fr)
        guard rc >= 0 else { throw VideoWriterError(path: path, reason: "encoder refused frame \(nextPts - 1) (error \(rc))") }
        try drain()
    }

    private func drain() throws {
        guard let c = codec, let pkt = packet, let f = fmt, let st = stream else { return }
        while true {
            let r = avcodec_receive_packet(c, pkt)
            if r == aim_averror_eagain() || r == aim_averror_eof() { return }
            guard r >= 0 else { throw VideoWriterError(path: path, reason: "encoding failed (error \(r))") }
            // Without a duration the MP4 muxer's edit list ends at the last frame's start and
            // demuxers then discard that frame.
            if pkt.pointee.duration == 0 { pkt.pointee.duration = 1 }
            av_packet_rescale_ts(pkt, c.pointee.time_base, st.pointee.time_base)
            pkt.pointee.stream_index = st.pointee.index
            let w = av_interleaved_write_frame(f, pkt)
            guard w >= 0 else { throw VideoWriterError(path: path, reason: "cannot write a packet (error \(w))") }
        }
    }

    /// Flushes the encoder and writes the container trailer. Called by deinit if forgotten.
    public func finish() throws {
        guard !finished, let c = codec, let f = fmt else { return }
        finished = true
        avcodec_send_frame(c, nil)
        try drain()
        let rc = av_write_trailer(f)
        guard rc >= 0 else { throw VideoWriterError(path: path, reason: "cannot write the trailer (error \(rc))") }
    }
}
