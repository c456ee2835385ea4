import Foundation
FileHandle.standardError.write("aim-train: not built yet (see README.md, Status)\n".data(using: .utf8)!)
exit(2)
