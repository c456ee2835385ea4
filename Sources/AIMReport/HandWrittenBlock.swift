// A generated markdown file (BENCHMARKS*.md, written whole by `aim-bench`) may carry one block
// kept by hand, e.g. the table of every CPU's benchmark file: it sits between two HTML comment
// markers, and a rerun copies it into the new file at the same place (why: without this each
// `make bench` erased it).

public enum HandWrittenBlock {
    public static let begin = "<!-- kept by hand: aim-bench carries this block into the next run -->"
    public static let end = "<!-- end of the block kept by hand -->"

    /// The block (markers included) in `text`, or nil when it has none or only one marker.
    public static func find(in text: String) -> Substring? {
        guard let b = text.range(of: begin), let e = text.range(of: end, range: b.upperBound..<text.endIndex) else { return nil }
        return text[b.lowerBound..<e.upperBound]
    }

    /// `generated` with the block of `previous` inserted after the line that contains `anchor`
    /// (followed by a blank line); `generated` unchanged when `previous` has no block or the anchor is missing.
    public static func carry(from previous: String?, into generated: String, after anchor: String) -> String {
        guard let previous, let block = find(in: previous), let a = generated.range(of: anchor),
              let lineEnd = generated[a.upperBound...].firstIndex(of: "\n") else { return generated }
        let head = generated[...lineEnd], tail = generated[generated.index(after: lineEnd)...]
        return head + "\n" + block + "\n" + tail
    }
}
