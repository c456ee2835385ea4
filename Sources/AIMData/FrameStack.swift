/// A stack of RGB24 frames of one size, `[count, height, width, 3]` uint8, row-major.
///
/// This is what decoding yields and what the uint8 transforms (resize, crop, flip) work on,
/// like the list of HWC uint8 arrays mmaction2 passes between pipeline steps.
public struct FrameStack: Equatable, Sendable {
    public var count: Int
    public var height: Int
    public var width: Int
    public var pixels: [UInt8]

    public init(count: Int, height: Int, width: Int, pixels: [UInt8]) {
        precondition(pixels.count == count * height * width * 3,
                     "FrameStack: \(pixels.count) bytes for \(count)x\(height)x\(width)x3")
        self.count = count; self.height = height; self.width = width; self.pixels = pixels
    }

    public init(count: Int, height: Int, width: Int) {
        self.init(count: count, height: height, width: width,
                  pixels: [UInt8](repeating: 0, count: count * height * width * 3))
    }

    public var frameBytes: Int { height * width * 3 }

    /// Pixel (r, g, b) of frame `f` at row `y`, column `x`.
    public func pixel(_ f: Int, _ y: Int, _ x: Int) -> (UInt8, UInt8, UInt8) {
        let o = f * frameBytes + (y * width + x) * 3
        return (pixels[o], pixels[o + 1], pixels[o + 2])
    }

    /// The frames at the given positions, in that order (repeats allowed).
    public func selecting(_ positions: [Int]) -> FrameStack {
        var out = [UInt8](repeating: 0, count: positions.count * frameBytes)
        let fb = frameBytes
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, p) in positions.enumerated() {
                    precondition(p >= 0 && p < count, "FrameStack: frame \(p) of \(count)")
                    dst.baseAddress!.advanced(by: k * fb).update(from: src.baseAddress! + p * fb, count: fb)
                }
            }
        }
        return FrameStack(count: positions.count, height: height, width: width, pixels: out)
    }

    /// Concatenate stacks of the same size along the frame axis.
    public static func concatenating(_ parts: [FrameStack]) -> FrameStack {
        guard let first = parts.first else { return FrameStack(count: 0, height: 0, width: 0) }
        var px = [UInt8](); px.reserveCapacity(parts.reduce(0) { $0 + $1.pixels.count })
        for p in parts {
            precondition(p.height == first.height && p.width == first.width, "FrameStack: sizes differ")
            px.append(contentsOf: p.pixels)
        }
        return FrameStack(count: parts.reduce(0) { $0 + $1.count }, height: first.height, width: first.width, pixels: px)
    }
}
