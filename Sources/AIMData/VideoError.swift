import Foundation

/// Why a video cannot be used. Every case names the file, so one log line is enough.
public enum VideoError: Error, CustomStringConvertible, Equatable, Sendable {
    case missing(path: String)
    /// The path leads to no regular file: a directory, a device, FIFO or socket, a /proc or /sys
    /// file, a symbolic link loop, or a lookup that fails otherwise. `what` says which.
    case notAFile(path: String, what: String)
    case empty(path: String)
    case notAVideo(path: String, reason: String)
    case audioOnly(path: String)
    case noVideoStream(path: String)
    case unsupportedCodec(path: String, codec: String)
    /// Fewer frames decode than the container promised (cut-off download, broken tail).
    /// `decoded` is the number of frames that really decode, so a caller can resample.
    case truncated(path: String, expected: Int, decoded: Int)
    case undecodable(path: String, reason: String)
    case badRequest(path: String, reason: String)

    public var path: String {
        switch self {
        case .missing(let p), .notAFile(let p, _), .empty(let p), .notAVideo(let p, _), .audioOnly(let p),
             .noVideoStream(let p), .unsupportedCodec(let p, _), .truncated(let p, _, _),
             .undecodable(let p, _), .badRequest(let p, _):
            return p
        }
    }

    /// The reason without the path (what `aim-data check` prints beside the path).
    public var reason: String {
        switch self {
        case .missing: return "missing file"
        case .notAFile(_, let what): return what
        case .empty: return "empty file (0 bytes)"
        case .notAVideo(_, let r): return "not a video file (\(r))"
        case .audioOnly: return "audio only, no video stream"
        case .noVideoStream: return "no video stream"
        case .unsupportedCodec(_, let c): return "no decoder for codec \(c)"
        case .truncated(_, let e, let d): return "truncated: \(d) of \(e) frames decode"
        case .undecodable(_, let r): return "undecodable (\(r))"
        case .badRequest(_, let r): return r
        }
    }

    public var description: String { "\(path): \(reason)" }
}
