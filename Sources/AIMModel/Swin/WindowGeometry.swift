/// Where the tokens of a (shifted) window live, for one volume of tokens per sample.
///
/// Tokens are rows in (sample, d, h, w) order. The volume is zero-padded at the end of each axis up
/// to a multiple of the window (`padded`; the official SwinTransformerBlock3D's F.pad), then windows
/// of `window` = (wd, wh, ww) tokens are taken after a cyclic shift by −`shift` (torch.roll) of the
/// padded volume, in the order of the official window_partition: windows (d, h, w)-major per sample,
/// tokens (d, h, w)-major inside a window. A window row that falls in the padding is a zero row;
/// the reverse reads only the volume's rows back (the official crop `x[:, :D, :H, :W]`). The same geometry
/// serves the three attentions of the Swin family:
///   swin2d spatial:  volume (1, H, W) per frame, window (1, w, w), shift (0, s, s)
///   swin2d temporal: volume (T, H, W) per clip, window (T, 1, 1), no shift — attention over time
///                    per position, the official '(b t) n c -> (b n) t c'
///   videoswin:       volume (T, H, W) per clip, window (wt, wh, ww), shift (st, sh, sw)
struct WindowGeometry {
    let volume: [Int]
    /// `volume` rounded up to window multiples (the official Dp, Hp, Wp).
    let padded: [Int]
    let window: [Int]
    let shift: [Int]
    /// Window-order row → volume row for one sample, −1 for a padding row.
    let sampleIndex: [Int32]
    /// Volume row → window-order row for one sample (every volume row sits in exactly one window).
    let sampleInverse: [Int32]
    /// −100 between tokens from different regions of a shifted window, 0 otherwise: [windows, L, L];
    /// nil without shift (the official attn_mask / compute_mask).
    let mask: [Float]?
    /// [L·L] rows of the relative-position bias table, built for `tableWindow` and sliced [:L, :L]
    /// as the official WindowAttention3D does (equal to the window's own index when L is the full window).
    let relativeIndex: [Int32]
    let tableRows: Int

    var tokens: Int { window.reduce(1, *) }
    var rowsPerSample: Int { volume.reduce(1, *) }
    /// Window-order rows per sample, padding included.
    var windowRowsPerSample: Int { padded.reduce(1, *) }
    var windowsPerSample: Int { windowRowsPerSample / tokens }
    var shifted: Bool { shift.contains { $0 > 0 } }
    var isPadded: Bool { padded != volume }

    init(volume: [Int], window: [Int], shift: [Int], tableWindow: [Int]) {
        self.volume = volume; self.window = window; self.shift = shift
        let pv = (0..<3).map { (volume[$0] + window[$0] - 1) / window[$0] * window[$0] }
        padded = pv
        let L = window.reduce(1, *)
        let nw = (0..<3).map { pv[$0] / window[$0] }
        var index = [Int32](repeating: -1, count: pv.reduce(1, *))
        var inverse = [Int32](repeating: -1, count: volume.reduce(1, *))
        var r = 0
        for a in 0..<nw[0] { for b in 0..<nw[1] { for c in 0..<nw[2] {
            for i in 0..<window[0] { for j in 0..<window[1] { for k in 0..<window[2] {
                // shifted[p] = padded[(p + shift) mod n], n the padded size
                let d = (a * window[0] + i + shift[0]) % pv[0]
                let h = (b * window[1] + j + shift[1]) % pv[1]
                let w = (c * window[2] + k + shift[2]) % pv[2]
                if d < volume[0] && h < volume[1] && w < volume[2] {
                    let v = (d * volume[1] + h) * volume[2] + w
                    index[r] = Int32(v)
                    inverse[v] = Int32(r)
                }
                r += 1
            } } }
        } } }
        sampleIndex = index
        sampleInverse = inverse
        if shift.contains(where: { $0 > 0 }) {
            // Region label of a position p (in shifted coordinates) along one axis: the official slices
            // (0, -window), (-window, -shift), (-shift, None) of the padded size (compute_mask(Dp, Hp, Wp));
            // with shift 0 the last slice covers all.
            func region(_ p: Int, _ axis: Int) -> Int {
                let n = pv[axis], s = shift[axis]
                if s == 0 { return 2 }
                return p < n - window[axis] ? 0 : (p < n - s ? 1 : 2)
            }
            var labels = [Int](repeating: 0, count: index.count)
            r = 0
            for a in 0..<nw[0] { for b in 0..<nw[1] { for c in 0..<nw[2] {
                for i in 0..<window[0] { for j in 0..<window[1] { for k in 0..<window[2] {
                    labels[r] = region(a * window[0] + i, 0) * 9 + region(b * window[1] + j, 1) * 3 + region(c * window[2] + k, 2)
                    r += 1
                } } }
            } } }
            var m = [Float](repeating: 0, count: index.count / L * L * L)
            for wi in 0..<(index.count / L) {
                for i in 0..<L { for j in 0..<L where labels[wi * L + i] != labels[wi * L + j] { m[(wi * L + i) * L + j] = -100 } }
            }
            mask = m
        } else {
            mask = nil
        }
        // Relative coordinates in the table's window, flattened (d, h, w)-major.
        let tw = tableWindow
        let full = tw.reduce(1, *)
        func coords(_ n: Int) -> (Int, Int, Int) { (n / (tw[1] * tw[2]), (n / tw[2]) % tw[1], n % tw[2]) }
        var rel = [Int32](repeating: 0, count: L * L)
        precondition(L <= full, "window \(window) larger than its table window \(tableWindow)")
        for i in 0..<L { for j in 0..<L {
            let (di, hi, wi) = coords(i), (dj, hj, wj) = coords(j)
            let v = (di - dj + tw[0] - 1) * (2 * tw[1] - 1) * (2 * tw[2] - 1) + (hi - hj + tw[1] - 1) * (2 * tw[2] - 1) + (wi - wj + tw[2] - 1)
            rel[i * L + j] = Int32(v)
        } }
        relativeIndex = rel
        tableRows = (2 * tw[0] - 1) * (2 * tw[1] - 1) * (2 * tw[2] - 1)
    }

    /// Window-order row → volume row for `samples` consecutive samples; −1 for a padding row, which
    /// `gatherRows` fills with zeros (why: no zero row past the volume, so a gather can read any
    /// [rows, C] tensor as it is, e.g. a gradient, without a padded copy).
    func index(samples: Int) -> [Int32] {
        let n = rowsPerSample, m = windowRowsPerSample
        var out = [Int32](repeating: 0, count: samples * m)
        for s in 0..<samples { for r in 0..<m {
            let v = sampleIndex[r]
            out[s * m + r] = v < 0 ? -1 : v + Int32(s * n)
        } }
        return out
    }

    /// Volume row → window-order row for `samples` consecutive samples: gathering with it reverses
    /// the partition and drops the padding rows (the crop).
    func inverse(samples: Int) -> [Int32] {
        let n = rowsPerSample, m = windowRowsPerSample
        var out = [Int32](repeating: 0, count: samples * n)
        for s in 0..<samples { for v in 0..<n { out[s * n + v] = sampleInverse[v] + Int32(s * m) } }
        return out
    }
}
