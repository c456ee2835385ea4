import AIMTensor
import Foundation

/// A synthetic *image* task for pretraining a tiny image backbone without any download
/// (what `make demo` freezes): single-frame clips of a bright square on a dark background,
/// labelled by the cell of a `grid`×`grid` partition that holds the square's centre. A backbone
/// that solves it encodes where things are in a frame — which is what the temporal adapters
/// later compare across frames — while knowing nothing about motion.
public enum SynthStills {
    /// Writes `out/stills/<split>/…` and `out/stills_<split>_list.txt` for train and val.
    public static func write(to out: String, perClass: Int, valPerClass: Int, grid: Int = 3, size: Int = 32, seed: UInt64 = 0) throws {
        precondition(grid >= 2 && size >= 16, "stills: grid ≥ 2 and size ≥ 16")
        let fm = FileManager.default
        for (split, count, splitKey) in [("train", perClass, UInt64(11)), ("val", valPerClass, UInt64(12))] {
            let dir = out + "/stills/" + split
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var list = ""
            for i in 0..<count {
                for cell in 0..<(grid * grid) {
                    var rng = RandomGenerator(keys: seed, splitKey, UInt64(i), UInt64(cell))
                    let frame = still(cell: cell, grid: grid, size: size, rng: &rng)
                    let rel = "stills/\(split)/cell\(cell)_\(pad6(i)).mkv"
                    let w = try VideoWriter(path: out + "/" + rel, encoder: "mjpeg", width: size, height: size, gop: 1)
                    try w.append(rgb: frame)
                    try w.finish()
                    list += "\(rel) \(cell)\n"
                }
            }
            try FileOutput.write(list, to: out + "/stills_\(split)_list.txt")
        }
    }

    /// One RGB frame whose square is centred inside `cell` (row-major over the grid).
    static func still(cell: Int, grid: Int, size: Int, rng: inout RandomGenerator) -> [UInt8] {
        let bg = UInt8(16 + rng.int(below: 48))
        let color: [UInt8] = (0..<3).map { _ in UInt8(160 + rng.int(below: 96)) }
        let side = size / 6 + rng.int(below: max(1, size / 8))
        let cellSize = Double(size) / Double(grid)
        let cx = (Double(cell % grid) + 0.1 + 0.8 * rng.uniformDouble()) * cellSize
        let cy = (Double(cell / grid) + 0.1 + 0.8 * rng.uniformDouble()) * cellSize
        let x0 = max(0, Int(cx) - side / 2), y0 = max(0, Int(cy) - side / 2)
        var px = [UInt8](repeating: bg, count: size * size * 3)
        for y in y0..<min(size, y0 + side) {
            for x in x0..<min(size, x0 + side) {
                let o = (y * size + x) * 3
                px[o] = color[0]; px[o + 1] = color[1]; px[o + 2] = color[2]
            }
        }
        return px
    }
}
