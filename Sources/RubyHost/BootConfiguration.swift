import FuncdCore

/// What the Ruby glue's `Funcd::Host.boot` is told, as a JSON object (Ruby parses it with its
/// own json).
enum BootConfiguration {
    static func json(_ configuration: Configuration, stdoutToStderr: Bool) -> String {
        let context = HandlerContext.literal(configuration)
        return "{\"modulePath\": \(quoted(configuration.modulePath)), \"handler\": \(quoted(configuration.handlerName)), "
            + "\"codeDirectory\": \(quoted(configuration.codeDirectory)), \"context\": \(context), "
            + "\"stdoutToStderr\": \(stdoutToStderr)}"
    }

    static func quoted(_ text: String) -> String { jsonStringLiteral(text) }
}
