import Foundation

/// Command lines as a shell reads them back: a recorded command (the run's config, log and lock)
/// must run again when pasted, also with spaces or quotes in its paths.
public enum ShellQuote {
    static let plain = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")

    /// `word` unchanged when the shell would read it as it is, else in single quotes.
    public static func word(_ word: String) -> String {
        if !word.isEmpty && word.allSatisfy({ plain.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    public static func line(_ words: [String]) -> String { words.map(word).joined(separator: " ") }
}
