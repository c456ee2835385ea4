import AIMData
import Foundation

/// Rows of per-video predictions as CSV, the same columns for `aim-eval --predictions` and
/// `aim-predict --csv`: the top k labels, each with its class name and probability.
public enum PredictionTable {
    public static func header(k: Int, leading: [String]) -> String {
        let tops = (1...max(k, 1)).flatMap { ["top\($0)_label", "top\($0)_class", "top\($0)_prob"] }
        return (leading + tops).map(csvField).joined(separator: ",")
    }

    public static func row(leading: [String], scores: [Float], k: Int, classes: LabelMap?) -> String {
        let tops = topLabels(scores, k: k).flatMap { l in ["\(l)", classes.name(l), probability(scores[l])] }
        return (leading + tops).map(csvField).joined(separator: ",")
    }

    /// Six decimals: enough to order any two classes a user compares by eye.
    public static func probability(_ p: Float) -> String { String(format: "%.6f", Double(p)) }

    /// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
    public static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
