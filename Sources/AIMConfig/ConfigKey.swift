// The vocabulary of the schema: key types, typed values, key descriptions, and errors.

/// What a key holds. Numbers are Int or Double; lists hold strings or doubles.
public enum ConfigType: Sendable, Equatable, CustomStringConvertible {
    case int
    case float
    case bool
    case string
    case strings
    case floats
    /// An integer, or a list of integers (held as `.int` / `.floats`): Swin's per-stage and per-axis sizes.
    case ints
    /// One of the allowed strings.
    case choice([String])
    /// A list of distinct allowed strings (a subset, e.g. `model.adapters`).
    case choices([String])

    public var description: String {
        switch self {
        case .int: return "an integer"
        case .float: return "a number"
        case .bool: return "a boolean (true or false)"
        case .string: return "a string"
        case .strings: return "a list of strings"
        case .floats: return "a list of numbers"
        case .ints: return "an integer or a list of integers"
        case .choice(let allowed): return "one of " + allowed.joined(separator: " | ")
        case .choices(let allowed): return "a list of distinct values from [" + allowed.joined(separator: ", ") + "]"
        }
    }
}

/// A typed config value.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    case strings([String])
    case floats([Double])

    /// The plain Swift value (Int, Double, Bool, String, [String] or [Double]).
    public var any: Any {
        switch self {
        case .int(let v): return v
        case .float(let v): return v
        case .bool(let v): return v
        case .string(let v): return v
        case .strings(let v): return v
        case .floats(let v): return v
        }
    }

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return String(v)
        case .bool(let v): return String(v)
        case .string(let v): return v
        case .strings(let v): return "[" + v.joined(separator: ", ") + "]"
        case .floats(let v): return "[" + v.map { String($0) }.joined(separator: ", ") + "]"
        }
    }
}

/// One documented key of the schema.
public struct ConfigKey: Sendable {
    public let name: String
    public let type: ConfigType
    public let defaultValue: ConfigValue
    public let doc: String
    /// Inclusive bounds for numbers (and for every element of a number list).
    public let minimum: Double?
    public let maximum: Double?
    /// An exclusive upper bound instead, for probabilities that must stay below 1.
    public let below: Double?
    /// Exact length for lists (e.g. 3 for a per-channel mean), nil = any length.
    public let length: Int?

    public init(name: String, type: ConfigType, defaultValue: ConfigValue, doc: String,
                minimum: Double? = nil, maximum: Double? = nil, below: Double? = nil, length: Int? = nil) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.doc = doc
        self.minimum = minimum
        self.maximum = maximum
        self.below = below
        self.length = length
    }

    /// The valid range as a user reads it: "1 to 4096", "0 to below 1", "at least 0".
    public var rangeDescription: String? {
        let lo = minimum.map(ConfigKey.format), hi = maximum.map(ConfigKey.format), ex = below.map(ConfigKey.format)
        switch (lo, hi, ex) {
        case let (l?, h?, _): return "\(l) to \(h)"
        case let (l?, nil, e?): return "\(l) to below \(e)"
        case let (l?, nil, nil): return "at least \(l)"
        case let (nil, h?, _): return "at most \(h)"
        case let (nil, nil, e?): return "below \(e)"
        default: return nil
        }
    }

    public static func int(_ name: String, _ value: Int, _ doc: String, min: Int? = nil, max: Int? = nil) -> ConfigKey {
        ConfigKey(name: name, type: .int, defaultValue: .int(value), doc: doc, minimum: min.map(Double.init), maximum: max.map(Double.init))
    }
    public static func float(_ name: String, _ value: Double, _ doc: String, min: Double? = nil, max: Double? = nil,
                             below: Double? = nil) -> ConfigKey {
        ConfigKey(name: name, type: .float, defaultValue: .float(value), doc: doc, minimum: min, maximum: max, below: below)
    }
    public static func bool(_ name: String, _ value: Bool, _ doc: String) -> ConfigKey {
        ConfigKey(name: name, type: .bool, defaultValue: .bool(value), doc: doc)
    }
    public static func string(_ name: String, _ value: String, _ doc: String) -> ConfigKey {
        ConfigKey(name: name, type: .string, defaultValue: .string(value), doc: doc)
    }
    public static func strings(_ name: String, _ value: [String], _ doc: String) -> ConfigKey {
        ConfigKey(name: name, type: .strings, defaultValue: .strings(value), doc: doc)
    }
    public static func floats(_ name: String, _ value: [Double], _ doc: String,
                              length: Int? = nil, min: Double? = nil, max: Double? = nil) -> ConfigKey {
        ConfigKey(name: name, type: .floats, defaultValue: .floats(value), doc: doc, minimum: min, maximum: max, length: length)
    }
    /// An integer or a list of integers; bounds hold for every element.
    public static func ints(_ name: String, _ value: [Int], _ doc: String, min: Int? = nil, max: Int? = nil) -> ConfigKey {
        ConfigKey(name: name, type: .ints, defaultValue: value.count == 1 ? .int(value[0]) : .floats(value.map(Double.init)), doc: doc,
                  minimum: min.map(Double.init), maximum: max.map(Double.init))
    }
    public static func choice(_ name: String, _ allowed: [String], _ value: String, _ doc: String) -> ConfigKey {
        precondition(allowed.contains(value), "schema: default \(value) of \(name) not among \(allowed)")
        return ConfigKey(name: name, type: .choice(allowed), defaultValue: .string(value), doc: doc)
    }
    public static func choices(_ name: String, _ allowed: [String], _ value: [String], _ doc: String) -> ConfigKey {
        precondition(value.allSatisfy(allowed.contains), "schema: default \(value) of \(name) not within \(allowed)")
        return ConfigKey(name: name, type: .choices(allowed), defaultValue: .strings(value), doc: doc)
    }
}

/// One problem found while loading: the file (or `--set`), the line when known, the key.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let key: String?
    public let message: String

    public init(file: String, line: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return key.map { "\(place): \($0): \(message)" } ?? "\(place): \(message)"
    }
}

/// Every problem of a config at once, so a user fixes them in one go.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let problems: [ConfigProblem]
    /// Problems found but not listed (beyond the first `ConfigLimits.listedProblems` of a file, so a
    /// file of a million misspelt keys is reported in a moment, not a line per key), and the
    /// line that says so.
    public let unlisted: Int
    public let unlistedNote: String

    public init(_ problems: [ConfigProblem], unlisted: Int = 0, unlistedNote: String = "") {
        self.problems = problems
        self.unlisted = unlisted
        self.unlistedNote = unlistedNote
    }
    public init(file: String, line: Int? = nil, key: String? = nil, _ message: String) {
        self.init([ConfigProblem(file: file, line: line, key: key, message: message)])
    }

    public var description: String {
        if unlisted > 0 {
            return "\(problems.count + unlisted) config errors, the first \(problems.count) listed:\n"
                + problems.map { "  \($0)" }.joined(separator: "\n") + "\n  " + unlistedNote
        }
        return problems.count == 1 ? "config error: \(problems[0])"
            : "\(problems.count) config errors:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// Collects a file's problems, listing the first `ConfigLimits.listedProblems` and counting the
/// rest; a problem's message is only built when it is listed (a "did you mean" costs an edit
/// distance to every schema key).
struct ConfigProblems {
    let file: String
    private(set) var list: [ConfigProblem] = []
    private(set) var unlisted = 0

    init(file: String) { self.file = file }

    var isEmpty: Bool { list.isEmpty }

    mutating func add(_ problem: @autoclosure () -> ConfigProblem) {
        if list.count < ConfigLimits.listedProblems { list.append(problem()) } else { unlisted += 1 }
    }

    var error: ConfigError {
        ConfigError(list, unlisted: unlisted, unlistedNote: "… and \(unlisted) more in \(file)")
    }
}
