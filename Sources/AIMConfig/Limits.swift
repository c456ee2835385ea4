// Bounds on what a config file may be, each far beyond any real config (the largest under
// configs/ is 1.6 KB, nests 3 levels and indents 2 columns) and far below what would crash or
// stall the loader. Input beyond them is refused with an error naming the file and line.

public enum ConfigLimits {
    /// Bytes in one config file (1 MiB): every config under configs/ is below 2 KB. A 10 MB
    /// file of unknown keys took minutes to report.
    public static let maxBytes = 1 << 20
    /// Problems listed per file (or per --set list); the rest are counted in one line, and a
    /// "did you mean" is only computed for the listed ones.
    public static let listedProblems = 20
}
