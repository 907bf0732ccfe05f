/// The `context` every kubeless handler gets beside the event (`function-name`, `timeout`,
/// `runtime`, `memory-limit`), written once as an object literal for the Node and Ruby glue,
/// which parse it with their own JSON (Python's glue is given Python objects instead).
public enum HandlerContext {
    /// `absent` is what a missing runtime or memory limit is: `null` in JSON, `undefined` for
    /// Node, as kubeless's Node runtime left them.
    public static func literal(_ configuration: Configuration, absent: String = "null") -> String {
        "{\"function-name\": \(jsonStringLiteral(configuration.handlerName)), \"timeout\": \(configuration.timeoutSeconds), "
            + "\"runtime\": \(configuration.runtime.map(jsonStringLiteral) ?? absent), "
            + "\"memory-limit\": \(configuration.memoryLimit.map(jsonStringLiteral) ?? absent)}"
    }
}
