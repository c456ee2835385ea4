import Foundation

/// Videos laid out one folder per class (`root/<class>/…/<video>`, as torchvision's ImageFolder
/// and mmaction2's `build_file_list.py --level 2` read them), turned into an mmaction2 video
/// list (`<class>/<video> <label>`) and a label map (line i names label i), so a user's own
/// videos train without writing either by hand.
public struct ClassFolders: Sendable {
    public let root: String
    /// Label i is `classes[i]`: the label map's order when one was given, else the folders' names sorted.
    public let classes: [String]
    /// Paths relative to `root`, sorted, with their labels.
    public let entries: [(path: String, label: Int)]
    /// Files under `root` that are not videos by their extension, or not inside a class folder (relative).
    public let ignored: [String]
    /// Classes of the label map with no folder (or no video) under `root`.
    public let classesWithoutVideos: [String]

    /// Video file extensions, lower-case.
    public static let videoExtensions = VideoReader.fileExtensions

    /// `labelMap`: label by an existing map (a validation folder must use the training folder's
    /// labels); a class folder it does not name is an error. nil: the class folders, sorted.
    public static func scan(root: String, labelMap: LabelMap?) throws -> ClassFolders {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw AnnotationError(file: root, line: nil, message: "no such folder (expected ROOT/<class>/<video> files)")
        }
        let top = try fm.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
        let folders = top.filter { name in
            var d: ObjCBool = false
            return fm.fileExists(atPath: (root as NSString).appendingPathComponent(name), isDirectory: &d) && d.boolValue
        }
        var ignored = top.filter { !folders.contains($0) }
        guard !folders.isEmpty else {
            throw AnnotationError(file: root, line: nil, message: "no class folders in it (expected ROOT/<class>/<video> files)")
        }
        let classes = labelMap?.names ?? folders
        if let labelMap {
            let unknown = folders.filter { !labelMap.names.contains($0) }
            if !unknown.isEmpty {
                throw AnnotationError(file: labelMap.path, line: nil, message: "does not name the class folder(s) \(unknown.prefix(5).map { "`\($0)`" }.joined(separator: ", ")) of \(root)\(unknown.count > 5 ? " (\(unknown.count) in all)" : "") — a label map of another dataset? Remove it to write one from these folders")
            }
        }
        var entries: [(path: String, label: Int)] = []
        for folder in folders {
            let label = classes.firstIndex(of: folder)!
            let walker = fm.enumerator(atPath: (root as NSString).appendingPathComponent(folder))
            var found: [String] = []
            while let rel = walker?.nextObject() as? String {
                let path = folder + "/" + rel
                if (rel as NSString).lastPathComponent.hasPrefix(".") { continue }
                var d: ObjCBool = false
                _ = fm.fileExists(atPath: (root as NSString).appendingPathComponent(path), isDirectory: &d)
                if d.boolValue { continue }
                if videoExtensions.contains((rel as NSString).pathExtension.lowercased()) { found.append(path) } else { ignored.append(path) }
            }
            entries += found.sorted().map { ($0, label) }
        }
        // mmaction2's list splits each line at whitespace: such a path could not be read back.
        let spaced = entries.map(\.path).filter { $0.contains { $0.isWhitespace } }
        if !spaced.isEmpty {
            throw AnnotationError(file: root, line: nil, message: "\(spaced.count) video path(s) hold whitespace, which a video list cannot hold (mmaction2 splits its lines at whitespace): \(spaced.prefix(3).map { "`\($0)`" }.joined(separator: ", ")); rename them, e.g. spaces to underscores")
        }
        guard !entries.isEmpty else {
            throw AnnotationError(file: root, line: nil, message: "no video files (\(videoExtensions.sorted().joined(separator: ", "))) in its class folders")
        }
        let used = Set(entries.map(\.label))
        return ClassFolders(root: root, classes: classes, entries: entries, ignored: ignored,
                            classesWithoutVideos: classes.indices.filter { !used.contains($0) }.map { classes[$0] })
    }

    /// The mmaction2 video list: one `path label` line per video.
    public var listText: String { entries.map { "\($0.path) \($0.label)\n" }.joined() }

    /// The label map: line i names label i.
    public var classesText: String { classes.map { $0 + "\n" }.joined() }
}
