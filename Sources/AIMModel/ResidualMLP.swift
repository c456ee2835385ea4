import AIMTensor

/// The TimeSformer blocks' last branch, `out = x2 + drop_path(mlp(norm(x2)))`, on every row or on
/// one row of every `every` (the class tokens, `ClassRowsBlock`). What its backward reads is kept
/// in the block's arena: the norm's input ("x2", or its picked rows "x2.c"), its output ("j.h"),
/// mean and rstd, and the MLP's own.
struct ResidualMLP {
    let norm: LayerNormLayer
    let mlp: MLPLayer

    /// The buffer for x2 [rows, D]: kept when the norm reads it in backward, else a temporary.
    func input(kept: Arena, scratch: Arena, rows: Int, width D: Int, every: Int?) -> FloatPtr {
        every == nil ? kept.buffer("x2", rows * D) : scratch.buffer("x2", rows * D)
    }

    /// Writes `out` (its picked rows only, with `every`) from x2 (`input`); `scales`: drop-path per
    /// row of all rows (empty: none). Returns the scales of the rows it ran on, for `backward`.
    func forward(out: FloatPtr, input x2: FloatPtr, rows R: Int, width D: Int, every: Int?, scales: [Float],
                 kept: Arena, scratch: Arena) -> [Float] {
        let J = every.map { R / $0 } ?? R
        var x: UnsafePointer<Float> = UnsafePointer(x2)
        if let every {
            let c = kept.buffer("x2.c", J * D)
            gatherRows(out: c, input: x2, rows: J, every: every, width: D)
            x = UnsafePointer(c)
        }
        let h = kept.buffer("j.h", J * D)
        norm.forward(h, x, mean: kept.buffer("j.mean", J), rstd: kept.buffer("j.rstd", J), rows: J)
        let m = scratch.buffer("j.out", J * D)
        mlp.forward(m, h, kept: kept, scratch: scratch, rows: J, accumulate: false)   // recomputed in backward
        let picked = every.map { classRowScales(scales, rows: R, every: $0) } ?? scales
        let y = every == nil ? out : scratch.buffer("j.y", J * D)
        y.update(from: x, count: J * D)
        applyRowScales(picked, out: y, m, rows: J, cols: D, accumulate: true)
        if let every { scatterRows(out: out, input: y, rows: J, every: every, width: D) }
        return picked
    }

    /// dx = dOut + the branch's gradient of x2 (overwritten); with `every`, dOut's other rows are
    /// zero (nothing read them). `scales`: what `forward` returned.
    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, rows R: Int, width D: Int, every: Int?, scales: [Float],
                  kept: Arena, scratch: Arena) {
        dx.update(from: dOut, count: R * D)
        let J = every.map { R / $0 } ?? R
        var dOutJ = dOut, dxJ = dx
        if let every {
            let d = scratch.buffer("j.dout.c", J * D)
            gatherRows(out: d, input: dOut, rows: J, every: every, width: D)
            dOutJ = UnsafePointer(d)
            dxJ = scratch.buffer("j.dx.c", J * D)
            dxJ.update(from: d, count: J * D)
        }
        let dm = scratch.buffer("j.dm", J * D)
        applyRowScales(scales, out: dm, dOutJ, rows: J, cols: D, accumulate: false)
        let dh = scratch.buffer("j.dh", J * D)
        mlp.backward(dInput: dh, dOut: dm, x: kept.buffer("j.h", J * D), kept: kept, scratch: scratch, rows: J, accumulateInput: false)
        norm.backward(dInput: dxJ, dOut: dh, input: kept.buffer(every == nil ? "x2" : "x2.c", J * D), mean: kept.buffer("j.mean", J),
                      rstd: kept.buffer("j.rstd", J), rows: J, accumulateInput: true)
        if let every { scatterRows(out: dx, input: dxJ, rows: J, every: every, width: D) }
    }
}
