import Foundation
FileHandle.standardError.write("aim-data: not built yet (see README.md, Status)\n".data(using: .utf8)!)
exit(2)
