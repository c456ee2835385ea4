import AIMConfig

extension ModelConfig {
    /// The `model.*` keys of a validated experiment config.
    public init(_ config: Config) throws {
        var settings: [String: Any] = [:]
        for (key, value) in config.values where key.hasPrefix("model.") {
            switch value {
            case .int(let v): settings[key] = v
            case .float(let v): settings[key] = v
            case .bool(let v): settings[key] = v
            case .string(let v): settings[key] = v
            case .strings(let v): settings[key] = v
            case .floats(let v): settings[key] = v
            }
        }
        try self.init(settings: settings)
    }
}
