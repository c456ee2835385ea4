import Foundation
FileHandle.standardError.write("aim-model: not built yet (see README.md, Status)\n".data(using: .utf8)!)
exit(2)
