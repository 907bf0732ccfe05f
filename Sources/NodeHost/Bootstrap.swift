import FuncdCore

/// The JavaScript funcd-node's Node runs first: it loads the glue from `runtimes/node` and hands
/// it the native functions and the configuration. Node runs it as a function body given
/// `process` and a `require` that knows only built-in modules, hence `createRequire`; the glue
/// gets that `require` too, for its own built-ins (see `builtin` in host.js).
enum Bootstrap {
    static func source(glueDirectory: String, configuration: Configuration, stdoutToStderr: Bool) -> String {
        let glue = quoted("\(glueDirectory)/funcd/host.js")
        let context = HandlerContext.literal(configuration, absent: "undefined")
        return """
            const native = globalThis.__funcdNative;
            delete globalThis.__funcdNative;
            try {
              const glue = require('module').createRequire(\(glue))(\(glue));
              return glue.boot(native, process, {
                modulePath: \(quoted(configuration.modulePath)),
                handler: \(quoted(configuration.handlerName)),
                stdoutToStderr: \(stdoutToStderr),
                require,
                context: \(context),
              });
            } catch (error) {
              return { error: "cannot load funcd's Node glue " + \(glue) + ": " + (error && error.stack || error) };
            }
            """
    }

    static func quoted(_ text: String) -> String { jsonStringLiteral(text) }
}
