// Turning YAML nodes into typed values, by the schema's type for the key.
//
// Scalars are interpreted from their text here rather than by the YAML resolver, so `3e-4`
// is a number (YAML 1.1 resolvers read it as a string), and a quoted "8" is a string, not an
// integer. Nothing is ever constructed from YAML tags.
import Yams

extension ConfigKey {
    /// The typed value of `node`, or a message saying why it does not fit this key.
    func parse(_ node: Node) -> Result<ConfigValue, ParseFailure> {
        switch type {
        case .ints:
            // Integral numbers also as "2.0": a config dump writes list elements as numbers.
            func integer(_ s: Node.Scalar) -> Int? {
                guard s.isPlain else { return nil }
                if let v = Int(s.string) { return v }
                if let d = Self.number(s.string), d == d.rounded(), abs(d) < 1e15 { return Int(d) }
                return nil
            }
            if let scalar = node.scalar {
                guard let v = integer(scalar) else {
                    return .failure(ParseFailure("expected \(type), got \(scalar.describe)"))
                }
                return checkBounds(.int(v))
            }
            guard let sequence = node.sequence, !sequence.isEmpty else {
                return .failure(ParseFailure("expected \(type), got \(node.kindDescription)"))
            }
            var values: [Double] = []
            for element in sequence {
                guard let s = element.scalar, let v = integer(s) else {
                    return .failure(ParseFailure("expected \(type), but an element is \(element.kindDescription)"))
                }
                values.append(Double(v))
            }
            return checkBounds(.floats(values))
        case .int, .float, .bool, .string, .choice:
            guard let scalar = node.scalar else {
                return .failure(ParseFailure("expected \(type), got \(node.kindDescription)"))
            }
            return parseScalar(scalar).flatMap(checkBounds)
        case .strings, .floats, .choices:
            guard let sequence = node.sequence else {
                if let s = node.scalar, !s.isNull {
                    return .failure(ParseFailure("expected \(type), got \(s.describe); write a list, e.g. [\(s.string)]"))
                }
                return .failure(ParseFailure("expected \(type), got \(node.kindDescription)"))
            }
            var items: [Node.Scalar] = []
            for element in sequence {
                guard let s = element.scalar else {
                    return .failure(ParseFailure("expected \(type), but an element is \(element.kindDescription)"))
                }
                items.append(s)
            }
            return parseList(items).flatMap(checkBounds)
        }
    }

    private func parseScalar(_ s: Node.Scalar) -> Result<ConfigValue, ParseFailure> {
        let text = s.string
        switch type {
        case .string:
            // An empty `key:` (null) means the empty string, e.g. `model.pretrained:`.
            return .success(.string(s.isNull ? "" : text))
        case .int:
            if s.isPlain, let v = Int(text) { return .success(.int(v)) }
            return .failure(ParseFailure("expected \(type), got \(s.describe)"))
        case .float:
            if s.isPlain, let v = Self.number(text) { return .success(.float(v)) }
            return .failure(ParseFailure("expected \(type), got \(s.describe)"))
        case .bool:
            if s.isPlain {
                switch text {
                case "true", "True", "TRUE": return .success(.bool(true))
                case "false", "False", "FALSE": return .success(.bool(false))
                default: break
                }
            }
            return .failure(ParseFailure("expected \(type), got \(s.describe)"))
        case .choice(let allowed):
            if allowed.contains(text), !s.isNull { return .success(.string(text)) }
            return .failure(ParseFailure("\(s.describe) is not allowed; expected \(type)" + suggestion(text, among: allowed)))
        default:
            fatalError("unreachable: list type \(type) parsed as a scalar")
        }
    }

    private func parseList(_ items: [Node.Scalar]) -> Result<ConfigValue, ParseFailure> {
        switch type {
        case .strings:
            return .success(.strings(items.map(\.string)))
        case .floats:
            var values: [Double] = []
            for s in items {
                guard s.isPlain, let v = Self.number(s.string) else {
                    return .failure(ParseFailure("expected \(type), but element \(s.describe) is not a number"))
                }
                values.append(v)
            }
            return .success(.floats(values))
        case .choices(let allowed):
            var seen = Set<String>()
            for s in items {
                guard allowed.contains(s.string) else {
                    return .failure(ParseFailure("element \(s.describe) is not allowed; expected \(type)" + suggestion(s.string, among: allowed)))
                }
                guard seen.insert(s.string).inserted else {
                    return .failure(ParseFailure("\"\(s.string)\" is listed twice"))
                }
            }
            return .success(.strings(items.map(\.string)))
        default:
            fatalError("unreachable: scalar type \(type) parsed as a list")
        }
    }

    /// Finite decimal numbers only (no .inf / .nan): configs feed arithmetic.
    static func number(_ text: String) -> Double? {
        guard let v = Double(text), v.isFinite else { return nil }
        // Double() also accepts "0x1p3" and "nan"; keep to plain decimal spellings.
        guard text.allSatisfy({ "0123456789+-.eE".contains($0) }) else { return nil }
        return v
    }

    /// Checks bounds and list lengths; a value of the right type that is out of range fails here.
    func checkBounds(_ value: ConfigValue) -> Result<ConfigValue, ParseFailure> {
        let numbers: [Double]
        switch value {
        case .int(let v): numbers = [Double(v)]
        case .float(let v): numbers = [v]
        case .floats(let v):
            if let length, v.count != length {
                return .failure(ParseFailure("expected exactly \(length) numbers, got \(v.count)"))
            }
            numbers = v
        case .strings(let v):
            if let length, v.count != length {
                return .failure(ParseFailure("expected exactly \(length) entries, got \(v.count)"))
            }
            numbers = []
        default: numbers = []
        }
        for x in numbers {
            let range = rangeDescription.map { " (valid: \($0))" } ?? ""
            if let minimum, x < minimum { return .failure(ParseFailure("\(value) is below the minimum \(Self.format(minimum))" + range)) }
            if let maximum, x > maximum { return .failure(ParseFailure("\(value) is above the maximum \(Self.format(maximum))" + range)) }
            if let below, x >= below {
                return .failure(ParseFailure("\(value) is out of range: it must be below \(Self.format(below))" + range))
            }
        }
        return .success(value)
    }

    /// Checks that a value built in Swift has this key's type, then its bounds.
    func check(_ value: ConfigValue) -> Result<ConfigValue, ParseFailure> {
        switch (type, value) {
        case (.int, .int), (.bool, .bool), (.string, .string), (.strings, .strings), (.floats, .floats), (.ints, .int):
            return checkBounds(value)
        case (.ints, .floats(let v)):
            return v.allSatisfy({ $0 == $0.rounded() }) ? checkBounds(value) : .failure(ParseFailure("expected \(type), got \(value)"))
        case (.float, .float(let v)):
            return v.isFinite ? checkBounds(value) : .failure(ParseFailure("\(v) is not finite"))
        case (.float, .int(let v)):
            return checkBounds(.float(Double(v)))
        case (.choice(let allowed), .string(let s)):
            return allowed.contains(s) ? .success(value)
                : .failure(ParseFailure("\"\(s)\" is not allowed; expected \(type)" + suggestion(s, among: allowed)))
        case (.choices(let allowed), .strings(let list)):
            if let bad = list.first(where: { !allowed.contains($0) }) {
                return .failure(ParseFailure("element \"\(bad)\" is not allowed; expected \(type)"))
            }
            return Set(list).count == list.count ? .success(value) : .failure(ParseFailure("a value is listed twice"))
        default:
            return .failure(ParseFailure("expected \(type), got \(value)"))
        }
    }

    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}

struct ParseFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

extension Node.Scalar {
    /// Plain (unquoted) scalars are the only ones read as numbers or booleans.
    var isPlain: Bool { style == .plain || style == .any }
    var isNull: Bool { isPlain && ["", "~", "null", "Null", "NULL"].contains(string) }
    var describe: String {
        if isNull { return "null (an empty value)" }
        return isPlain ? "'\(string)'" : "the quoted string \"\(string)\""
    }
}

extension Node {
    /// The tag written on this node, `!!` for the YAML namespace, nil if none. Yams gives a
    /// quoted scalar without a tag the `!!str` tag and a collection tagged `!` none, so those
    /// two cannot be told from untagged here (`ConfigTextScan` sees them).
    var writtenTag: String? {
        let name: String
        switch self {
        case .scalar(let s):
            name = s.tag.description
            if !s.isPlain, name == Tag.Name.str.rawValue { return nil }
        case .mapping(let m): name = m.tag.description
        case .sequence(let q): name = q.tag.description
        }
        guard !name.isEmpty else { return nil }
        let yaml = "tag:yaml.org,2002:"
        return name.hasPrefix(yaml) ? "!!" + name.dropFirst(yaml.count) : name
    }

    var kindDescription: String {
        if let s = scalar { return s.describe }
        if mapping != nil { return "a mapping" }
        if sequence != nil { return "a list" }
        return "an unsupported YAML node"
    }
}

// MARK: did you mean

/// " (did you mean 'x'?)" for the closest candidate within a small edit distance, else "".
func suggestion(_ word: String, among candidates: [String]) -> String {
    guard let best = closest(word, among: candidates) else { return "" }
    return " (did you mean '\(best)'?)"
}

func closest(_ word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let (best, d) = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return d <= max(2, word.count / 4) && d < word.count ? best : nil
}

/// The closest schema key to an unknown one: by whole-name edit distance, else a key with the
/// same last component in another section (`model.lr` → `train.lr`).
func suggestKey(_ key: String) -> String {
    let names = ConfigSchema.keys.map(\.name)
    if let best = closest(key, among: names) { return " (did you mean '\(best)'?)" }
    let leaf = key.split(separator: ".").last.map(String.init) ?? key
    let sameLeaf = names.filter { $0.split(separator: ".").last.map(String.init) == leaf }
    if sameLeaf.count == 1 { return " (did you mean '\(sameLeaf[0])'?)" }
    let leafMatches = names.filter { name in
        let l = name.split(separator: ".").last.map(String.init) ?? name
        return editDistance(l, leaf) <= max(1, leaf.count / 4)
    }
    if leafMatches.count == 1 { return " (did you mean '\(leafMatches[0])'?)" }
    // A shortened name: `data.flip` → `data.flip_ratio`.
    let extensions = names.filter { $0.hasPrefix(key) }
    if extensions.count == 1 { return " (did you mean '\(extensions[0])'?)" }
    return ""
}

/// Levenshtein distance with a transposition counting 1 (optimal string alignment).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in 0...x.count { d[i][0] = i }
    for j in 0...y.count { d[0][j] = j }
    for i in 1...x.count {
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[x.count][y.count]
}
