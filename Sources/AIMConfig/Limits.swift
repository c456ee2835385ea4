// Bounds on what a config file may be, each far beyond any real config (the largest under
// configs/ is 1.6 KB, nests 3 levels and indents 2 columns) and far below what would crash or
// stall the loader. Input beyond them is refused with an error naming the file and line.
//
// The nesting bounds: Yams builds its node tree recursively, a stack frame per level, so a
// deeply nested document ends the process with a stack overflow (SIGSEGV), not an error.
// Measured here (debug build): about 4000 nested mappings fit the 8 MiB main-thread stack,
// about 250 a 512 KiB secondary-thread stack. Flow depth 64 on top of block depth 128 is at
// most 192 levels, below both.

public enum ConfigLimits {
    /// Bytes in one config file (1 MiB): every config under configs/ is below 2 KB. A 10 MB
    /// file of unknown keys took minutes to report.
    public static let maxBytes = 1 << 20
    /// Problems listed per file (or per --set list); the rest are counted in one line, and a
    /// "did you mean" is only computed for the listed ones.
    public static let listedProblems = 20
    /// `[`/`{` collections inside each other: real configs nest one (a list of numbers).
    public static let maxFlowDepth = 64
    /// Indentation columns plus block indicators (`- `, `? `, `: `) on one line: each block
    /// level takes at least one; real configs reach 3.
    public static let maxBlockDepth = 128
}
