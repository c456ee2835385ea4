// A look at a config's text before Yams parses it, for nesting deeper than `ConfigLimits`
// allows (Yams would overflow the stack on it) and for explicit tags.
//
// The scan is a simplified YAML tokenizer (after libyaml's scanner), not a parser: it knows
// quoted strings, comments, plain scalars, block scalars, tags and the indicators, well enough
// not to count brackets inside strings and comments as structure. Where it may misread (a plain
// scalar continued on the next line, say), it errs towards counting: brackets inside a string,
// a comment or a block scalar are still counted from where that text starts, so a misread quote
// cannot hide real nesting after it. The cost is refusing a single string or comment with more
// than `ConfigLimits.maxFlowDepth` nested brackets, which no config has.

/// What the scan found: the first structure too deep (with its 1-based line), and the
/// explicit tags (`!!str`, `!foo`, `!`) by where the node they belong to starts (its first
/// property, 1-based line and column, as Yams marks nodes). Yams itself reports a quoted
/// scalar without a tag as `!!str`, and a collection tagged `!` as untagged: those two are
/// only seen here.
struct ConfigTextScan {
    struct Position: Hashable {
        let line: Int
        let column: Int
    }
    var tooDeep: (line: Int, message: String)?
    var tags: [Position: String] = [:]
}

/// Scans YAML `text` for nesting beyond `ConfigLimits` and for explicit tags.
func scanConfigText(_ text: String) -> ConfigTextScan {
    var scanner = TextScanner(Array(text.unicodeScalars))
    scanner.run()
    return scanner.result
}

private struct TextScanner {
    let s: [Unicode.Scalar]
    var i = 0
    var line = 1
    var result = ConfigTextScan()

    /// Structural flow depth ([ and { outside strings and comments).
    var flow = 0
    /// Inside a plain (unquoted) scalar: quotes and `!` there are literal characters.
    var inPlain = false
    /// The previous character was a blank (or the line just started).
    var afterBlank = true
    /// Where this line starts, its leading blanks, and the block indicators (`- `, `? `, `: `
    /// outside flow collections) on it.
    var lineStart = 0
    var indent = 0
    var indicators = 0
    /// Column of the last `- ` / `? ` on this line, and of its first other token (a key).
    var entryColumn: Int?
    var keyColumn: Int?
    /// After `key: |` or `- >`: the lines indented deeper than the key (or entry) are text.
    var blockScalarParent: Int?
    var blockScalarBrackets = 0
    /// Where the properties (tag, anchor) of the next node began.
    var propertyStart: ConfigTextScan.Position?

    init(_ s: [Unicode.Scalar]) { self.s = s }

    func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }
    static func isBreak(_ c: Unicode.Scalar?) -> Bool {
        guard let c else { return false }
        return c == "\n" || c == "\r" || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}"
    }
    static func isBlank(_ c: Unicode.Scalar?) -> Bool { c == " " || c == "\t" || c == "\u{FEFF}" }
    /// Blank, line break or end of text: what must follow an indicator such as `- `.
    static func isBlankZ(_ c: Unicode.Scalar?) -> Bool { c == nil || isBlank(c) || isBreak(c) }
    static func isFlowIndicator(_ c: Unicode.Scalar?) -> Bool { c == "," || c == "[" || c == "]" || c == "{" || c == "}" }

    var failed: Bool { result.tooDeep != nil }

    mutating func fail(_ message: String) {
        if result.tooDeep == nil { result.tooDeep = (line, message) }
    }

    /// Counts a bracket of text that is not structure (a string, a comment, a block scalar)
    /// in `local`, on top of the structure around it.
    mutating func textBracket(_ c: Unicode.Scalar, _ local: inout Int) {
        if c == "[" || c == "{" {
            local += 1
            checkFlow(flow + local)
        } else if c == "]" || c == "}" {
            local = max(0, local - 1)
        }
    }

    mutating func checkFlow(_ depth: Int) {
        if depth > ConfigLimits.maxFlowDepth {
            fail("brackets ([ or {) nested more than \(ConfigLimits.maxFlowDepth) deep; a config nests a few levels at most")
        }
    }

    mutating func checkBlock() {
        if indent + indicators > ConfigLimits.maxBlockDepth {
            fail("nested too deeply: indentation and block indicators ('- ', '? ', ': ') add up to \(indent + indicators), "
                 + "more than \(ConfigLimits.maxBlockDepth); a config nests a few levels at most")
        }
    }

    /// Starts the line at `i`: measures its leading blanks.
    mutating func beginLine() {
        lineStart = i
        indent = 0
        indicators = 0
        entryColumn = nil
        keyColumn = nil
        while Self.isBlank(at(i + indent)) { indent += 1 }
    }

    /// The line holds nothing but blanks.
    var lineIsBlank: Bool { at(lineStart + indent) == nil || Self.isBreak(at(lineStart + indent)) }

    /// Consumes the line break at `i` (CR LF is one) and starts the next line.
    mutating func newLine() {
        if s[i] == "\r", at(i + 1) == "\n" { i += 1 }
        i += 1
        line += 1
        beginLine()
    }

    mutating func run() {
        if at(0) == "\u{FEFF}" { i = 1 }  // a byte order mark is no column
        beginLine()
        while i < s.count, !failed {
            if let parent = blockScalarParent, lineIsBlank || indent > parent {
                scanTextLine()
            } else {
                blockScalarParent = nil
                scanLine()
            }
        }
    }

    /// A block scalar's line: text, with brackets counted over the whole scalar.
    mutating func scanTextLine() {
        if !lineIsBlank { checkBlock() }
        var local = blockScalarBrackets
        while let c = at(i), !Self.isBreak(c), !failed {
            textBracket(c, &local)
            i += 1
        }
        blockScalarBrackets = local
        if i < s.count, !failed { newLine() }
    }

    mutating func scanLine() {
        inPlain = false
        afterBlank = true
        i = lineStart + indent
        // Document markers and directives at the start of a line.
        if indent == 0, let c = at(i), c == "-" || c == ".", at(i + 1) == c, at(i + 2) == c, Self.isBlankZ(at(i + 3)) {
            i += 3
        } else if indent == 0, at(i) == "%" {
            scanComment()
        }
        while let c = at(i), !Self.isBreak(c), !failed {
            if Self.isBlank(c) {
                afterBlank = true
                i += 1
            } else if inPlain {
                scanInPlain(c)
            } else {
                scanToken(c)
            }
        }
        if !failed, !lineIsBlank, at(lineStart + indent) != "#" { checkBlock() }
        if i < s.count, !failed { newLine() }
    }

    /// Inside a plain scalar: it ends at `: `, ` #`, and in flow collections at , [ ] { }.
    mutating func scanInPlain(_ c: Unicode.Scalar) {
        if c == "#", afterBlank {
            inPlain = false
            scanComment()
        } else if c == ":", Self.isBlankZ(at(i + 1)) || (flow > 0 && Self.isFlowIndicator(at(i + 1))) {
            inPlain = false
            if flow == 0 { indicators += 1 }
            i += 1
        } else if flow > 0, Self.isFlowIndicator(c) {
            inPlain = false
            scanToken(c)
        } else {
            i += 1
        }
        afterBlank = false
    }

    /// At the start of a token (after blanks, an indicator, a tag or an anchor).
    mutating func scanToken(_ c: Unicode.Scalar) {
        let next = at(i + 1), column = i - lineStart
        if c != "!", c != "&", c != "#" { propertyStart = nil }
        switch c {
        case "#":
            scanComment()
        case "[", "{":
            flow += 1
            checkFlow(flow)
            i += 1
        case "]", "}":
            flow = max(0, flow - 1)
            i += 1
        case ",":
            i += 1
        case "-" where Self.isBlankZ(next), "?" where flow > 0 || Self.isBlankZ(next), ":" where flow > 0 || Self.isBlankZ(next):
            if flow == 0 {
                indicators += 1
                if c != ":", keyColumn == nil { entryColumn = column }
            }
            i += 1
        case "|" where flow == 0, ">" where flow == 0:
            blockScalarParent = keyColumn ?? entryColumn ?? indent
            blockScalarBrackets = 0
            i += 1
        default:
            if keyColumn == nil { keyColumn = column }
            switch c {
            case "'", "\"":
                scanQuoted(c)
            case "!", "&", "*":
                let start = i
                if c != "*", propertyStart == nil { propertyStart = .init(line: line, column: column + 1) }
                if c == "!", next == "<" {
                    while let d = at(i), !Self.isBreak(d), d != ">" { i += 1 }
                    if at(i) == ">" { i += 1 }
                } else {
                    while let d = at(i), !Self.isBlankZ(d), !(flow > 0 && Self.isFlowIndicator(d)) { i += 1 }
                }
                if c == "!", let at = propertyStart { result.tags[at] = String(String.UnicodeScalarView(s[start..<i])) }
            default:
                inPlain = true
                i += 1
            }
        }
        afterBlank = false
    }

    /// A comment (or directive) to the end of the line; brackets counted from its start.
    mutating func scanComment() {
        var local = 0
        while let c = at(i), !Self.isBreak(c), !failed {
            textBracket(c, &local)
            i += 1
        }
    }

    /// A quoted scalar, possibly over several lines; brackets counted from its start.
    mutating func scanQuoted(_ quote: Unicode.Scalar) {
        i += 1
        var local = 0
        while let c = at(i), !failed {
            if Self.isBreak(c) {
                newLine()
                if !lineIsBlank { checkBlock() }
                continue
            }
            if quote == "'", c == "'" {
                if at(i + 1) == "'" { i += 2; continue }
                i += 1
                return
            }
            if quote == "\"" {
                if c == "\\", let e = at(i + 1), !Self.isBreak(e) { i += 2; continue }
                if c == "\"" { i += 1; return }
            }
            textBracket(c, &local)
            i += 1
        }
    }
}
