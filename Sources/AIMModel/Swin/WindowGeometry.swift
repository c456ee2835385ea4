/// Where the tokens of a (shifted) window live, for one volume of tokens per sample.
///
/// Tokens are rows in (sample, d, h, w) order. Windows of `window` = (wd, wh, ww) tokens are taken
/// after a cyclic shift by −`shift` (torch.roll), in the order of the official window_partition:
/// windows (d, h, w)-major per sample, tokens (d, h, w)-major inside a window. The same geometry
/// serves the three attentions of the Swin family:
///   swin2d spatial:  volume (1, H, W) per frame, window (1, w, w), shift (0, s, s)
///   swin2d temporal: volume (T, H, W) per clip, window (T, 1, 1), no shift — attention over time
///                    per position, the official '(b t) n c -> (b n) t c'
///   videoswin:       volume (T, H, W) per clip, window (wt, wh, ww), shift (st, sh, sw)
struct WindowGeometry {
    let volume: [Int]
    let window: [Int]
    let shift: [Int]
    /// Window-order row → volume row, for one sample.
    let sampleIndex: [Int32]
    /// −100 between tokens from different regions of a shifted window, 0 otherwise: [windows, L, L];
    /// nil without shift (the official attn_mask / compute_mask).
    let mask: [Float]?
    /// [L·L] rows of the relative-position bias table, built for `tableWindow` and sliced [:L, :L]
    /// as the official WindowAttention3D does (equal to the window's own index when L is the full window).
    let relativeIndex: [Int32]
    let tableRows: Int

    var tokens: Int { window.reduce(1, *) }
    var rowsPerSample: Int { volume.reduce(1, *) }
    var windowsPerSample: Int { rowsPerSample / tokens }
    var shifted: Bool { shift.contains { $0 > 0 } }

    init(volume: [Int], window: [Int], shift: [Int], tableWindow: [Int]) {
        self.volume = volume; self.window = window; self.shift = shift
        let L = window.reduce(1, *)
        let nw = (0..<3).map { volume[$0] / window[$0] }
        var index = [Int32](repeating: 0, count: volume.reduce(1, *))
        var r = 0
        for a in 0..<nw[0] { for b in 0..<nw[1] { for c in 0..<nw[2] {
            for i in 0..<window[0] { for j in 0..<window[1] { for k in 0..<window[2] {
                // shifted[p] = x[(p + shift) mod n]
                let d = (a * window[0] + i + shift[0]) % volume[0]
                let h = (b * window[1] + j + shift[1]) % volume[1]
                let w = (c * window[2] + k + shift[2]) % volume[2]
                index[r] = Int32((d * volume[1] + h) * volume[2] + w)
                r += 1
            } } }
        } } }
        sampleIndex = index
        if shift.contains(where: { $0 > 0 }) {
            // Region label of a position p (in shifted coordinates) along one axis: the official slices
            // (0, -window), (-window, -shift), (-shift, None); with shift 0 the last slice covers all.
            func region(_ p: Int, _ axis: Int) -> Int {
                let n = volume[axis], s = shift[axis]
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

    /// Window-order row → volume row for `samples` consecutive samples.
    func index(samples: Int) -> [Int32] {
        let n = rowsPerSample
        var out = [Int32](repeating: 0, count: samples * n)
        for s in 0..<samples { for r in 0..<n { out[s * n + r] = sampleIndex[r] + Int32(s * n) } }
        return out
    }
}
