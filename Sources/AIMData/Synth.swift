import AIMTensor
import Foundation

/// A synthetic action dataset whose classes differ only in the order of frames.
///
/// Classes come in pairs that play the same frames forwards and backwards: a bright square
/// moving right (0) / left (1), down (2) / up (3), growing (4) / shrinking (5). A sample of
/// class 2k+1 is exactly the frames of a class-2k sample in reverse order, so a model that
/// averages per-frame features cannot tell the two classes of a pair apart (it tops out at 50%
/// accuracy, and is at chance with 2 classes), while a temporal model can.
/// Files are really encoded, rotating through MPEG-4 in AVI, MJPEG in Matroska and (when this
/// FFmpeg has libx264) H.264 in MP4; each split gets an mmaction2 video list.
public struct SynthDataset {
    public static let classNames = ["move_right", "move_left", "move_down", "move_up", "grow", "shrink"]

    public struct Summary: Sendable {
        public var files: [String: Int] = [:]  // split → count
        public var codecs: [String] = []
        public var missingEncoders: [String] = []
    }

    /// Writes `out/videos/<split>/…`, `out/train_list.txt`, `out/val_list.txt`, `out/classes.txt`.
    public static func write(to out: String, classes: Int, perClass: Int, valPerClass: Int,
                             frames: Int = 16, size: Int = 32, seed: UInt64 = 0) throws -> Summary {
        precondition(classes >= 2 && classes <= classNames.count, "synth: 2 to \(classNames.count) classes")
        precondition(size >= 16 && size % 2 == 0, "synth: size must be even and at least 16")
        precondition(frames >= 2, "synth: at least 2 frames")
        let fm = FileManager.default
        var summary = Summary()
        var codecs: [(encoder: String, ext: String)] = [("mpeg4", "avi"), ("mjpeg", "mkv")]
        if VideoWriter.hasEncoder("libx264") { codecs.append(("libx264", "mp4")) } else { summary.missingEncoders.append("libx264") }
        summary.codecs = codecs.map { "\($0.encoder)/\($0.ext)" }
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        try FileOutput.write(classNames.prefix(classes).joined(separator: "\n").appending("\n"), to: out + "/classes.txt")
        for (split, count, splitKey) in [("train", perClass, UInt64(1)), ("val", valPerClass, UInt64(2))] {
            let dir = out + "/videos/" + split
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var list = ""
            var n = 0
            for i in 0..<count {
                // One set of frames per pair index; the pair's two classes share it.
                for c in 0..<classes {
                    var rng = RandomGenerator(keys: seed, splitKey, UInt64(i), UInt64(c / 2))
                    var clip = pairFrames(kind: c / 2, frames: frames, size: size, rng: &rng)
                    if c % 2 == 1 { clip.reverse() }
                    let codec = codecs[(i * classes + c) % codecs.count]
                    let rel = "videos/\(split)/\(classNames[c])_\(pad6(i)).\(codec.ext)"
                    let w = try VideoWriter(path: out + "/" + rel, encoder: codec.encoder, width: size, height: size, gop: 8)
                    for f in clip { try w.append(rgb: f) }
                    try w.finish()
                    list += "\(rel) \(c)\n"
                    n += 1
                }
            }
            try FileOutput.write(list, to: out + "/\(split)_list.txt")
            summary.files[split] = n
        }
        return summary
    }

    /// The frames of one sample of pair `kind` (0 horizontal motion, 1 vertical, 2 scale),
    /// in the "forward" order.
    static func pairFrames(kind: Int, frames: Int, size: Int, rng: inout RandomGenerator) -> [[UInt8]] {
        let bg = UInt8(16 + rng.int(below: 48))
        let color: [UInt8] = (0..<3).map { _ in UInt8(160 + rng.int(below: 96)) }
        let side = size / 6 + rng.int(below: max(1, size / 8))
        let travel = size - side
        // Start and end along the motion axis: at least half the free range apart.
        let a = rng.int(below: max(1, travel / 4) + 1)
        let b = travel - rng.int(below: max(1, travel / 4) + 1)
        let across = rng.int(below: travel + 1)
        let center = (size / 2 - 2 + rng.int(below: 5), size / 2 - 2 + rng.int(below: 5))
        return (0..<frames).map { t in
            let u = Double(t) / Double(frames - 1)
            var px = [UInt8](repeating: bg, count: size * size * 3)
            var x0: Int, y0: Int, s: Int
            switch kind {
            case 0: x0 = a + Int((Double(b - a) * u).rounded()); y0 = across; s = side
            case 1: y0 = a + Int((Double(b - a) * u).rounded()); x0 = across; s = side
            default:
                s = 2 + Int((Double(size * 2 / 3 - 2) * u).rounded())
                x0 = max(0, center.0 - s / 2); y0 = max(0, center.1 - s / 2)
            }
            for y in y0..<min(size, y0 + s) {
                for x in x0..<min(size, x0 + s) {
                    let o = (y * size + x) * 3
                    px[o] = color[0]; px[o + 1] = color[1]; px[o + 2] = color[2]
                }
            }
            return px
        }
    }
}
