import Foundation

/// A JSON string literal, quotes included: quotes, backslashes and control characters escaped.
/// For the files written as text here (config dumps, manifests, check reports) whose key order
/// and layout are part of what they are, which JSONSerialization does not keep.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20 || (0x7F...0x9F).contains(u.value):
            out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
