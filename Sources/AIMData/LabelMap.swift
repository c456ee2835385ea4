import AIMConfig
import Foundation

/// Class names by label index, as mmaction2's `label_map_*.txt` (line i = name of label i).
/// Something-Something-V2's `labels.json` (`{"name": "index", …}`) is read too, so an SSv2
/// user can point at the file the dataset ships.
public struct LabelMap: Equatable, Sendable {
    public let names: [String]
    /// The `data.classes` value that asks for no class names at all.
    public static let noNames = "none"
    /// The file the names came from (named in errors).
    public let path: String

    public init(names: [String], path: String) { self.names = names; self.path = path }

    public static func load(path: String) throws -> LabelMap {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AnnotationError(file: path, line: nil, message: "cannot read the label map")
        }
        if path.lowercased().hasSuffix(".json") { return try LabelMap(json: data, path: path) }
        var lines = try textLines(data, file: path).map { $0.trimmingCharacters(in: .whitespaces) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        // A blank line inside the list would shift every later label by one.
        if let blank = lines.firstIndex(where: \.isEmpty) {
            throw AnnotationError(file: path, line: blank + 1, message: "blank line inside the label map (line i names label i-1)")
        }
        // Line i is the name of class i - 1: a name given twice would print for two classes.
        var seen = ClassNames(file: path)
        for (i, name) in lines.enumerated() { try seen.add(name, line: i + 1) }
        let names = lines
        guard !names.isEmpty else { throw AnnotationError(file: path, line: nil, message: "the label map holds no class names") }
        return LabelMap(names: names, path: path)
    }

    /// SSv2 `labels.json`: every index 0..<n exactly once, every name once. Errors name the line
    /// of the class.
    init(json data: Data, path: String) throws {
        guard let members = try jsonObjectMembers(data, classNames: path) else {
            throw AnnotationError(file: path, line: nil, message: "expected a JSON object {\"class name\": \"index\", …} (SSv2 labels.json)")
        }
        var byIndex: [Int: String] = [:]
        for (name, v, line) in members {
            // `true as? Int` is 1: a boolean is no index.
            if let b = jsonBoolean(v) {
                throw AnnotationError(file: path, line: line, message: "class `\(name)`: index is a boolean (\(b)), not an integer")
            }
            guard let i = (v as? String).flatMap({ Int($0) }) ?? (v as? Int), i >= 0 else {
                throw AnnotationError(file: path, line: line, message: "class `\(name)`: index `\(v)` is not a non-negative integer")
            }
            if let other = byIndex[i] {
                throw AnnotationError(file: path, line: line, message: "index \(i) is given to both `\(other)` and `\(name)`")
            }
            byIndex[i] = name
        }
        let n = byIndex.count
        guard n > 0 else { throw AnnotationError(file: path, line: nil, message: "the label map holds no class names") }
        if let gap = (0..<n).first(where: { byIndex[$0] == nil }) {
            throw AnnotationError(file: path, line: nil, message: "no class has index \(gap) (indices must be 0..<\(n))")
        }
        self.init(names: (0..<n).map { byIndex[$0]! }, path: path)
    }

    /// The map a config names: `data.classes`, else (with `orClassList`) a Kinetics class list or
    /// SSv2 labels.json given as `data.class_list`, else the names the training annotation gives
    /// its labels by (a Kinetics CSV's sorted, the SSv2 labels.json beside it) when they name
    /// every class; nil when the config names none (labels print as numbers).
    public static func fromConfig(_ c: Config, orClassList: Bool = true) throws -> LabelMap? {
        let explicit = c.string("data.classes")
        // `none`: labels print as numbers, whatever names the annotation or a checkpoint has.
        if explicit == LabelMap.noNames { return nil }
        if !explicit.isEmpty { return try load(path: explicit, key: "data.classes") }
        guard orClassList, c.string("data.format") != "list", c.string("data.format") != "diving48_json" else { return nil }
        let list = c.string("data.class_list")
        if !list.isEmpty { return try load(path: list, key: "data.class_list").asClassList() }
        let derived: LabelMap?
        switch c.string("data.format") {
        case "kinetics_csv": derived = trainingKineticsNames(config: c).map { LabelMap(names: $0, path: c.string("data.train")) }
        case "ssv2_json": derived = ssv2LabelsBeside(c.string("data.train")).flatMap { try? load(path: $0) }
        default: derived = nil
        }
        return derived.flatMap { $0.names.count >= c.int("model.num_classes") ? $0.asClassList() : nil }
    }

    /// `load`, a missing file named with the config key that gave it (a shipped config run from
    /// another folder than the repository's root did not say which key, nor relative to what).
    static func load(path: String, key: String) throws -> LabelMap {
        guard FileManager.default.fileExists(atPath: path) else {
            throw AnnotationError(file: path, line: nil, message: "cannot read the label map (config key \(key); "
                + "a relative path is taken from the folder the tool runs in, \(FileManager.default.currentDirectoryPath))")
        }
        return try load(path: path)
    }

    /// Annotations that name each video's class (Kinetics, SSv2) must agree with the label map
    /// shown for their labels, else every printed name and per-class figure would be another
    /// class's (a map in another order than the class list the labels came from).
    public func checkNames(_ samples: [VideoSample], file: String) throws {
        for s in samples {
            guard let name = s.className, s.label < names.count, names[s.label] != name else { continue }
            throw AnnotationError(file: file, line: s.line, message: "class `\(name)` has label \(s.label) here, but the label map \(path) "
                + "names label \(s.label) `\(names[s.label])`: give data.classes the names in the order of the class list the labels come from")
        }
    }

    /// A class list may name more classes than a model uses (a Kinetics list with a subset
    /// trained): only a shorter one is refused.
    private(set) var isClassList = false
    func asClassList() -> LabelMap { var m = self; m.isClassList = true; return m }

    /// A map that does not name every class of the model (or names more) is refused: the
    /// names would be wrong or missing for some predictions.
    public func check(numClasses: Int) throws {
        guard names.count == numClasses || (isClassList && names.count > numClasses) else {
            let fewer = names.count < numClasses
            throw AnnotationError(file: path, line: nil,
                                  message: "the label map names \(names.count) classes, model.num_classes is \(numClasses)"
                                      + (fewer ? " (labels \(names.count)…\(numClasses - 1) would have no name)" : ""))
        }
    }

    /// Every label of an annotation has a name here (else the annotation's line is named).
    public func checkLabels(_ samples: [VideoSample], file: String) throws {
        for s in samples where s.label < 0 || s.label >= names.count {
            throw AnnotationError(file: file, line: s.line,
                                  message: "label \(s.label) is outside the label map \(path) (\(names.count) names: labels 0…\(names.count - 1))")
        }
    }

    public func name(_ label: Int) -> String { label >= 0 && label < names.count ? names[label] : "\(label)" }
}

extension Optional where Wrapped == LabelMap {
    /// The class name when there is a map, else the label number.
    public func name(_ label: Int) -> String { self?.name(label) ?? "\(label)" }
}
