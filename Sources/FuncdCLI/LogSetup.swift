import Logging

extension ProcessEnvironment {
    /// funcd's own log goes to stderr (stdout carries the access log and the handler's prints), at
    /// the level `FUNCD_LOG_LEVEL` names (default info). Bootstrapped once, by `main`.
    public static func bootstrapLogging(_ environment: [String: String]) {
        let level = environment["FUNCD_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
