// An experiment config: every schema key resolved to a typed value.
//
// Resolution order, later wins: schema defaults → `base:` files (recursively, in order) → the
// file's own keys → `--set key=value` overrides. Everything is validated before any value is
// used: unknown keys, wrong types, bad choices and out-of-range numbers are errors that name
// the file (and line), the key and the reason.
import Foundation
import Yams

public struct Config: Sendable, Equatable {
    /// The config's name: the stem of the file it was loaded from (work_dirs/<name>).
    public let name: String
    /// Where it came from: the file path, "<defaults>" or "<dump>".
    public let source: String
    /// Every schema key with its resolved value.
    public private(set) var values: [String: ConfigValue]

    /// All defaults.
    public init(name: String = "default") {
        self.name = name
        self.source = "<defaults>"
        self.values = Dictionary(uniqueKeysWithValues: ConfigSchema.keys.map { ($0.name, $0.defaultValue) })
    }

    private init(name: String, source: String, values: [String: ConfigValue]) {
        self.name = name
        self.source = source
        self.values = values
    }

    public static func == (a: Config, b: Config) -> Bool { a.name == b.name && a.values == b.values }

    // MARK: loading

    /// Loads `path` (following `base:` files), then applies `overrides` ("key=value" strings).
    public static func load(path: String, overrides: [String] = []) throws -> Config {
        let display = URL(fileURLWithPath: path).standardizedFileURL.path
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var config = Config(name: stem)
        let fileValues = try readLayered(display, chain: [])
        config = Config(name: stem, source: path, values: config.values.merging(fileValues) { _, new in new })
        try config.apply(overrides: overrides)
        return config
    }

    /// A file's values merged over its bases'. `chain` holds the files that inherit from it.
    private static func readLayered(_ path: String, chain: [String]) throws -> [String: ConfigValue] {
        let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if let i = chain.firstIndex(of: canonical) {
            let cycle = (chain[i...] + [canonical]).map { URL(fileURLWithPath: $0).lastPathComponent }
            throw ConfigError(file: chain.last!, key: "base", "inheritance cycle: " + cycle.joined(separator: " -> "))
        }
        try checkFile(path)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError(file: path, "cannot read the config file (\(error.localizedDescription))")
        }
        // Foundation's "couldn't be opened" hid the cause: say it, with the line.
        guard let text = String(data: data, encoding: .utf8) else {
            // No UTF-8 sequence spans a line break: the first line that does not decode is the one.
            let lines = [UInt8](data).split(separator: 0x0A, omittingEmptySubsequences: false)
            let line = (lines.firstIndex { String(bytes: $0, encoding: .utf8) == nil } ?? 0) + 1
            throw ConfigError(file: path, line: line, "not UTF-8 text (a config is YAML in UTF-8)")
        }
        let scan = scanConfigText(text)
        if let deep = scan.tooDeep { throw ConfigError(file: path, line: deep.line, deep.message) }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(file: path, "invalid YAML: \(error)")
        }
        // Nothing but comments is more likely a file truncated or not yet written than a wish
        // for all defaults; `{}` says that on purpose.
        guard let root else { throw ConfigError(file: path, "the file is empty: a config states at least its base or a key") }
        if let tag = explicitTag(root, scan) {
            throw ConfigError(file: path, line: root.mark?.line, tagMessage(tag))
        }
        guard let mapping = root.mapping else {
            throw ConfigError(file: path, line: root.mark?.line, "the top level must be a mapping of keys, got \(root.kindDescription)")
        }

        var bases: [String] = []
        var body: [(Node, Node)] = []
        var problems = ConfigProblems(file: path)
        var baseLine: Int?
        for (k, v) in mapping {
            guard let keyText = k.scalar?.string, keyText == "base" else { body.append((k, v)); continue }
            // Like any key: a second `base:` silently replaced the first.
            if let first = baseLine {
                problems.add(ConfigProblem(file: path, line: k.mark?.line, key: "base", message: "set twice in this file (first at line \(first))"))
                continue
            }
            baseLine = k.mark?.line ?? 0
            if let (node, tag) = firstTag(k, scan) ?? firstTag(v, scan) {
                problems.add(ConfigProblem(file: path, line: node.mark?.line, key: "base", message: tagMessage(tag)))
                continue
            }
            let names: [Node] = v.sequence.map(Array.init) ?? [v]
            for n in names {
                guard let s = n.scalar, !s.isNull, !s.string.isEmpty else {
                    problems.add(ConfigProblem(file: path, line: n.mark?.line, key: "base",
                                               message: "expected a path (or a list of paths) of base configs, got \(n.kindDescription)"))
                    continue
                }
                let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
                bases.append(s.string.hasPrefix("/") ? s.string
                             : dir.appendingPathComponent(s.string).standardizedFileURL.path)
            }
        }
        var own: [String: ConfigValue] = [:]
        var lines: [String: Int] = [:]
        flatten(body, prefix: "", file: path, scan: scan, into: &own, lines: &lines, problems: &problems)
        if !problems.isEmpty { throw problems.error }

        var merged: [String: ConfigValue] = [:]
        for base in bases {
            guard FileManager.default.fileExists(atPath: base) else {
                throw ConfigError(file: path, key: "base", "base config \(base) does not exist")
            }
            merged.merge(try readLayered(base, chain: chain + [canonical])) { _, new in new }
        }
        merged.merge(own) { _, new in new }
        return merged
    }

    /// Refuses what is not a regular file, or is too large, before reading it: reading a FIFO
    /// blocks until a writer comes, a device or a directory failed with a wrong reason ("You
    /// don't have permission" for /dev/null). A path that cannot be examined is left to the read
    /// to explain.
    private static func checkFile(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        let kinds: [(mode_t, String)] = [(S_IFDIR, "a directory"), (S_IFIFO, "a FIFO"), (S_IFCHR, "a character device"),
                                         (S_IFBLK, "a block device"), (S_IFSOCK, "a socket")]
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG else {
            let name = kinds.first { $0.0 == kind }?.1 ?? "another kind of file"
            throw ConfigError(file: path, "not a regular file (\(name))")
        }
        // A bound on the work: parsing, then a problem (with a "did you mean") per key.
        let size = Int(info.st_size)
        if size > ConfigLimits.maxBytes {
            let mib = (Double(size) / Double(1 << 20) * 10).rounded(.up) / 10
            throw ConfigError(file: path, "a config is at most \(ConfigLimits.maxBytes >> 20) MiB; this file is "
                              + String(format: "%.1f", mib) + " MiB (\(size) bytes)")
        }
    }

    /// Nested mappings become dotted keys; both `model: {width: 768}` and `model.width: 768`
    /// name the same key, and setting it twice in one file is an error.
    private static func flatten(_ pairs: [(Node, Node)], prefix: String, file: String, scan: ConfigTextScan,
                                into values: inout [String: ConfigValue], lines: inout [String: Int],
                                problems: inout ConfigProblems) {
        for (k, v) in pairs {
            let line = k.mark?.line
            guard let part = k.scalar?.string, !part.isEmpty else {
                problems.add(ConfigProblem(file: file, line: line, key: prefix.isEmpty ? nil : prefix,
                                           message: "keys must be non-empty strings, got \(k.kindDescription)"))
                continue
            }
            let key = prefix.isEmpty ? part : prefix + "." + part
            if let tag = explicitTag(k, scan) {
                problems.add(ConfigProblem(file: file, line: line, key: key, message: tagMessage(tag)))
                continue
            }
            if let schemaKey = ConfigSchema.key(key) {
                if let first = lines[key] {
                    problems.add(ConfigProblem(file: file, line: line, key: key, message: "set twice in this file (first at line \(first))"))
                    continue
                }
                lines[key] = line ?? 0
                if let (node, tag) = firstTag(v, scan) {
                    problems.add(ConfigProblem(file: file, line: node.mark?.line ?? line, key: key, message: tagMessage(tag)))
                    continue
                }
                switch schemaKey.parse(v) {
                case .success(let value): values[key] = value
                case .failure(let f): problems.add(ConfigProblem(file: file, line: v.mark?.line ?? line, key: key, message: f.message))
                }
            } else if let nested = v.mapping, ConfigSchema.keys.contains(where: { $0.name.hasPrefix(key + ".") }) {
                if let tag = explicitTag(v, scan) {
                    problems.add(ConfigProblem(file: file, line: v.mark?.line ?? line, key: key, message: tagMessage(tag)))
                    continue
                }
                flatten(nested.map { ($0.key, $0.value) }, prefix: key, file: file, scan: scan, into: &values, lines: &lines, problems: &problems)
            } else {
                problems.add(ConfigProblem(file: file, line: line, key: key, message: "unknown key" + suggestKey(key)))
            }
        }
    }

    // MARK: tags

    /// A tag written on `node` (`!!str`, `!!python/object:os.system`, `!foo`, `!`), nil if none:
    /// from Yams, or from the text scan where Yams cannot tell (`!!str` on a quoted scalar, `!`
    /// on a collection).
    static func explicitTag(_ node: Node, _ scan: ConfigTextScan) -> String? {
        if let tag = node.writtenTag { return tag }
        guard let mark = node.mark, let tag = scan.tags[.init(line: mark.line, column: mark.column)] else { return nil }
        switch node {
        case .scalar(let s):
            return s.isPlain ? nil : tag  // a plain scalar's tag Yams does show
        case .mapping(let m):
            // A block mapping starts where its first key does: a tag there is the key's.
            if let first = m.first?.key.mark, first.line == mark.line, first.column == mark.column { return nil }
            return tag
        case .sequence:
            return tag
        }
    }

    /// The first tagged node of `node` and, for a list, its elements.
    static func firstTag(_ node: Node, _ scan: ConfigTextScan) -> (Node, String)? {
        if let tag = explicitTag(node, scan) { return (node, tag) }
        for element in node.sequence ?? [] {
            if let tag = explicitTag(element, scan) { return (element, tag) }
        }
        return nil
    }

    /// Tags are refused, not ignored: nothing is ever constructed from one (a config is data),
    /// and a value silently read without its tag hides a file written for another tool.
    static func tagMessage(_ tag: String) -> String {
        "explicit YAML tag '\(tag)' is not accepted: a config holds plain values, and nothing is built from a tag; write the value without it"
    }

    // MARK: overrides

    /// Applies "key=value" overrides (e.g. from `--set`); all problems are reported together.
    public mutating func apply(overrides: [String]) throws {
        var problems = ConfigProblems(file: "--set")
        for assignment in overrides {
            // Named as given, quoted: `--set "=v"` said "--set: : unknown key" (an empty key).
            let given = "--set " + jsonString(assignment)
            guard let eq = assignment.firstIndex(of: "=") else {
                let bare = assignment.trimmingCharacters(in: .whitespaces)
                let example = ConfigSchema.key(bare).map { " (e.g. \(bare)=\($0.defaultValue))" } ?? ""
                problems.add(ConfigProblem(file: given, message: "no '='; write key=value" + example))
                continue
            }
            let key = assignment[..<eq].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else {
                problems.add(ConfigProblem(file: given, message: "no key before '='"))
                continue
            }
            let text = String(assignment[assignment.index(after: eq)...])
            guard ConfigSchema.key(key) != nil else {
                // Here rather than in set(), so the suggestion is only computed for a listed key.
                problems.add(ConfigProblem(file: "--set", key: key, message: "unknown key" + suggestKey(key)))
                continue
            }
            do {
                try set(key, yaml: text)
            } catch let e as ConfigError {
                for p in e.problems { problems.add(p) }
            }
        }
        if !problems.isEmpty { throw problems.error }
    }

    /// Sets `key` from the text of a YAML scalar or flow list, typed by the schema. For string
    /// keys the text is taken verbatim (paths need no quoting); surrounding quotes are removed.
    public mutating func set(_ key: String, yaml text: String) throws {
        guard let schemaKey = ConfigSchema.key(key) else {
            throw ConfigError(file: "--set", key: key, "unknown key" + suggestKey(key))
        }
        let node: Node
        if schemaKey.type == .string {
            let t = text.trimmingCharacters(in: .whitespaces)
            let quoted = t.count >= 2 && ((t.hasPrefix("\"") && t.hasSuffix("\"")) || (t.hasPrefix("'") && t.hasSuffix("'")))
            if quoted, scanConfigText(t).tooDeep == nil, let parsed = try? Yams.compose(yaml: t), let s = parsed.scalar {
                node = .scalar(s)
            } else {
                node = Node(t, .implicit, .doubleQuoted)
            }
        } else {
            let scan = scanConfigText(text)
            if let deep = scan.tooDeep { throw ConfigError(file: "--set", key: key, deep.message) }
            do {
                node = try Yams.compose(yaml: text) ?? Node("", .implicit, .plain)
            } catch {
                throw ConfigError(file: "--set", key: key, "cannot parse '\(text)' as a YAML value: \(error)")
            }
            if let (_, tag) = Config.firstTag(node, scan) { throw ConfigError(file: "--set", key: key, Config.tagMessage(tag)) }
        }
        switch schemaKey.parse(node) {
        case .success(let value): values[key] = value
        case .failure(let f): throw ConfigError(file: "--set", key: key, f.message)
        }
    }

    /// Sets `key` to a value built in Swift (an `.int` is accepted for a float key).
    public mutating func set(_ key: String, _ value: ConfigValue) throws {
        guard let schemaKey = ConfigSchema.key(key) else {
            throw ConfigError(file: source, key: key, "unknown key" + suggestKey(key))
        }
        switch schemaKey.check(value) {
        case .success(let v): values[key] = v
        case .failure(let f): throw ConfigError(file: source, key: key, f.message)
        }
    }

    // MARK: typed access (a wrong key or type here is a programming error, not a user error)

    public func value(_ key: String) -> ConfigValue {
        guard let v = values[key] else {
            preconditionFailure("AIMConfig: '\(key)' is not a schema key" + suggestKey(key))
        }
        return v
    }

    private func mismatch(_ key: String, _ wanted: String) -> Never {
        preconditionFailure("AIMConfig: '\(key)' holds \(ConfigSchema.key(key)!.type), not \(wanted)")
    }

    public func int(_ key: String) -> Int {
        if case .int(let v) = value(key) { return v }
        mismatch(key, "an integer")
    }

    /// Float keys, and integer keys converted.
    public func double(_ key: String) -> Double {
        switch value(key) {
        case .float(let v): return v
        case .int(let v): return Double(v)
        default: mismatch(key, "a number")
        }
    }

    public func bool(_ key: String) -> Bool {
        if case .bool(let v) = value(key) { return v }
        mismatch(key, "a boolean")
    }

    /// String and choice keys.
    public func string(_ key: String) -> String {
        if case .string(let v) = value(key) { return v }
        mismatch(key, "a string")
    }

    /// String-list and multi-choice keys.
    public func strings(_ key: String) -> [String] {
        if case .strings(let v) = value(key) { return v }
        mismatch(key, "a list of strings")
    }

    public func doubles(_ key: String) -> [Double] {
        if case .floats(let v) = value(key) { return v }
        mismatch(key, "a list of numbers")
    }

    /// The keys under `prefix` (e.g. "model.") as plain Swift values, for code that takes
    /// `[String: Any]` settings (`ModelConfig(settings:)`).
    public func settings(prefix: String) -> [String: Any] {
        var out: [String: Any] = [:]
        for (k, v) in values where k.hasPrefix(prefix) { out[k] = v.any }
        return out
    }

    // MARK: canonical dump

    /// All resolved keys as JSON (also valid YAML), sorted, one key per line, with "name"
    /// first: deterministic text for checkpoint metadata. `Config(dump:)` reads it back.
    public func dump() -> String {
        var lines = ["  \(jsonString("name")): \(jsonString(name))"]
        for key in values.keys.sorted() {
            // Checkpoints hold this text: integer lists stay as they were always written (2.0).
            lines.append("  \(jsonString(key)): \(jsonValue(values[key]!, key: nil))")
        }
        return "{\n" + lines.joined(separator: ",\n") + "\n}\n"
    }

    /// Every key (defaults included) as a config file `--config` reads back to the same values,
    /// sections nested as in `configs/` (mmaction2 dumps its config into the work dir the same way).
    /// `describe`: each key preceded by a comment saying what it means (the schema's text).
    public func yamlText(header: [String] = [], describe: Bool = false) -> String {
        var lines = header.map { "# " + $0 }
        var section = ""
        for key in values.keys.sorted(by: { ($0.contains(".") ? 1 : 0, $0) < ($1.contains(".") ? 1 : 0, $1) }) {
            let doc = describe ? ConfigSchema.key(key).map { "# " + $0.doc } : nil
            guard let dot = key.firstIndex(of: ".") else {
                if let doc { lines.append(doc) }
                lines.append("\(key): \(jsonValue(values[key]!, key: key))")
                continue
            }
            let head = String(key[..<dot]), rest = String(key[key.index(after: dot)...])
            if head != section { lines.append("\(head):"); section = head }
            if let doc { lines.append("  " + doc) }
            lines.append("  \(rest): \(jsonValue(values[key]!, key: key))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Rebuilds a config from `dump()` text (keys missing from an older dump take defaults).
    public init(dump text: String) throws {
        let file = "<dump>"
        let scan = scanConfigText(text)
        if let deep = scan.tooDeep { throw ConfigError(file: file, line: deep.line, deep.message) }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(file: file, "invalid dump: \(error)")
        }
        guard let mapping = root?.mapping else { throw ConfigError(file: file, "a config dump must be a JSON object") }
        var name = "default"
        var body: [(Node, Node)] = []
        for (k, v) in mapping {
            if k.scalar?.string == "name" {
                guard let s = v.scalar else { throw ConfigError(file: file, key: "name", "expected a string") }
                name = s.string
            } else {
                body.append((k, v))
            }
        }
        var values: [String: ConfigValue] = [:]
        var lines: [String: Int] = [:]
        var problems = ConfigProblems(file: file)
        Config.flatten(body, prefix: "", file: file, scan: scan, into: &values, lines: &lines, problems: &problems)
        if !problems.isEmpty { throw problems.error }
        self.init(name: name, source: file, values: Config(name: name).values.merging(values) { _, new in new })
    }

    /// `key`: an integer list (held as doubles) is written as integers, as the config had it.
    private func jsonValue(_ v: ConfigValue, key: String?) -> String {
        switch v {
        case .int(let x): return String(x)
        case .float(let x): return String(x)
        case .bool(let x): return String(x)
        case .string(let x): return jsonString(x)
        case .strings(let x): return "[" + x.map(jsonString).joined(separator: ", ") + "]"
        case .floats(let x):
            let integers = key.flatMap(ConfigSchema.key)?.type == .ints && x.allSatisfy { $0 == $0.rounded() && abs($0) < 1e15 }
            return "[" + x.map { integers ? String(Int($0)) : String($0) }.joined(separator: ", ") + "]"
        }
    }
}
