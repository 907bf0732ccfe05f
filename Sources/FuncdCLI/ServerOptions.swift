import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FuncdCore

/// The flags that mirror the kubeless environment; each wins over its variable.
public struct ServerOptions: ParsableArguments, Sendable {
    @Option(help: "HTTP port; 0 picks a free one. (FUNC_PORT, default 8080)")
    public var port: Int?

    @Option(help: "Address to bind. (FUNC_HOST, default 0.0.0.0 for serve, 127.0.0.1 for run)")
    public var host: String?

    @Option(help: "Seconds a call may take before it is answered 408. (FUNC_TIMEOUT, default 180)")
    public var timeout: Double?

    @Option(
        help:
            "Seconds an interrupted handler gets to stop; then its worker is replaced (without a supervisor, funcd exits non-zero). (FUNC_TIMEOUT_GRACE, default 2)"
    )
    public var timeoutGrace: Double?

    @Option(help: "Handler calls in flight at once. (FUNC_CONCURRENCY, default 16)")
    public var concurrency: Int?

    @Option(help: "Calls that may wait beyond those in flight; more get 503. (FUNC_QUEUE, default 4 x concurrency)")
    public var queue: Int?

    @Option(
        help:
            "Worker processes, each a full server with its own interpreter, under a supervisor that replaces stuck or crashed ones; 0 serves in this process. (FUNC_WORKERS, default 1)"
    )
    public var workers: Int?

    @Option(help: "Largest request body in bytes; larger gets 413. (FUNC_MEMFILE_MAX or REQ_MB_LIMIT; default 100 MB, Node 1 MB)")
    public var bodyLimit: Int?

    @Option(help: "Seconds to finish in-flight calls after SIGTERM. (SHUTDOWN_TIMEOUT, default 10)")
    public var shutdownTimeout: Double?

    @Option(help: "Access log on stdout: off, combined or json. (FUNC_ACCESS_LOG, default combined)")
    public var accessLog: String?

    @Option(
        help:
            "CloudEvents: on reads binary and structured events into the kubeless event (and refuses batches with 415); off treats them as any request, exactly as kubeless did. (FUNC_CLOUDEVENTS, default on)"
    )
    public var cloudevents: String?

    @Option(help: "Runtime name passed to the handler, e.g. python3.11, nodejs18 or ruby3.1, or exec for a program; picks the language. (FUNC_RUNTIME)")
    public var runtime: String?

    @Option(help: "exec runtime: serializing (the answer is all of stdout, once the program exits) or streaming (stdout goes out as written). (FUNC_EXEC_MODE, default serializing)")
    public var execMode: String?

    @Flag(help: "exec runtime: stdout begins with a CGI head (Status:, Content-Type:, other fields, a blank line). (FUNC_EXEC_CGI)")
    public var execCgi = false

    @Option(help: "exec runtime: the answer's Content-Type when the program sets none. (FUNC_EXEC_CONTENT_TYPE, default the request's, else application/octet-stream)")
    public var execContentType: String?

    @Option(help: "exec runtime: bytes of stdout a serializing call may buffer; beyond, the call is stopped and answered 500. (FUNC_EXEC_OUTPUT_LIMIT, default 104857600)")
    public var execOutputLimit: Int?

    @Option(help: "Memory limit passed to the handler in its context. (FUNC_MEMORY_LIMIT)")
    public var memoryLimit: String?

    @Option(help: "Seconds a client has to send a request's head, from connecting or from its first byte. (FUNC_HEADER_TIMEOUT, default 10)")
    public var headerTimeout: Double?

    @Option(help: "Seconds without progress while a request body arrives or an answer waits for the client. (FUNC_BODY_TIMEOUT, default 30)")
    public var bodyTimeout: Double?

    @Option(help: "Seconds a keep-alive connection may wait for its next request. (FUNC_IDLE_TIMEOUT, default 620)")
    public var idleTimeout: Double?

    @Option(help: "Seconds an early 413 or 503 keeps reading what the client still sends, so it reads the answer. (FUNC_LINGER_TIMEOUT, default 10)")
    public var lingerTimeout: Double?

    @Option(help: "Open connections per worker; at the cap idle ones and late heads are closed first. (FUNC_MAX_CONNECTIONS, default 3/4 of the descriptor limit, at most 10000)")
    public var maxConnections: Int?

    @Option(help: "Request-body bytes buffered per worker at once; a body that does not fit gets 503. (FUNC_BODY_BUDGET, default 134217728)")
    public var bodyBudget: Int?

    @Option(help: "Header fields per request; more gets 431. (FUNC_MAX_HEADERS, default 100)")
    public var maxHeaders: Int?

    @Option(help: "Bytes of a request's target and header fields; more gets 431. (FUNC_MAX_HEADER_BYTES, default 32768)")
    public var maxHeaderBytes: Int?

    @Option(help: "Requests read ahead on one connection before reading pauses. (FUNC_MAX_PIPELINED, default 16)")
    public var maxPipelined: Int?

    @Option(help: "Answer bytes waiting for one client before reading pauses. (FUNC_SEND_BUFFER, default 65536)")
    public var sendBuffer: Int?

    public init() {}

    /// The flag values keyed by the environment variable they override.
    @Option(help: "Kafka bootstrap servers, comma-separated; set, funcd also consumes. (KAFKA_BROKERS)")
    var kafkaBrokers: String?

    @Option(help: "Kafka topics to consume, comma-separated. (KAFKA_TOPICS)")
    var kafkaTopics: String?

    @Option(help: "Kafka consumer group. (KAFKA_GROUP, default the module name)")
    var kafkaGroup: String?

    @Option(help: "Topic for messages whose handler failed every try. (KAFKA_DLQ_TOPIC)")
    var kafkaDlqTopic: String?

    @Option(
        help:
            "Topics a message's reply-to may name, comma-separated, * and ? globs. (KAFKA_REPLY_TOPICS, default any but those consumed, the DLQ and __*)"
    )
    var kafkaReplyTopics: String?

    @Option(
        help:
            "Seconds one reply or dead letter may take to reach the broker before it is sent again (the partition waits). (KAFKA_SEND_TIMEOUT, default 30)"
    )
    var kafkaSendTimeout: String?

    @Option(
        name: .customLong("kafka-conf"),
        help: "A librdkafka property, name=value; repeatable. (KAFKA_CONF_<name with dots as underscores>)")
    var kafkaConf: [String] = []

    public func validate() throws {
        for property in kafkaConf where !property.contains("=") || property.first == "=" {
            throw ValidationError("--kafka-conf \(property): expected name=value, e.g. session.timeout.ms=6000")
        }
    }

    var overrides: [String: String] {
        var values: [String: String] = [:]
        values["FUNC_PORT"] = port.map(String.init)
        values["FUNC_HOST"] = host
        values["FUNC_TIMEOUT"] = timeout.map { String($0) }
        values["FUNC_TIMEOUT_GRACE"] = timeoutGrace.map { String($0) }
        values["FUNC_CONCURRENCY"] = concurrency.map(String.init)
        values["FUNC_QUEUE"] = queue.map(String.init)
        values["FUNC_WORKERS"] = workers.map(String.init)
        if let bodyLimit {
            values["FUNC_MEMFILE_MAX"] = String(bodyLimit)
        }
        values["SHUTDOWN_TIMEOUT"] = shutdownTimeout.map { String($0) }
        values["FUNC_ACCESS_LOG"] = accessLog
        values["FUNC_CLOUDEVENTS"] = cloudevents
        values["FUNC_RUNTIME"] = runtime
        values["FUNC_MEMORY_LIMIT"] = memoryLimit
        values["FUNC_EXEC_MODE"] = execMode
        if execCgi { values["FUNC_EXEC_CGI"] = "true" }
        values["FUNC_EXEC_CONTENT_TYPE"] = execContentType
        values["FUNC_EXEC_OUTPUT_LIMIT"] = execOutputLimit.map(String.init)
        values["FUNC_HEADER_TIMEOUT"] = headerTimeout.map { String($0) }
        values["FUNC_BODY_TIMEOUT"] = bodyTimeout.map { String($0) }
        values["FUNC_IDLE_TIMEOUT"] = idleTimeout.map { String($0) }
        values["FUNC_LINGER_TIMEOUT"] = lingerTimeout.map { String($0) }
        values["FUNC_MAX_CONNECTIONS"] = maxConnections.map(String.init)
        values["FUNC_BODY_BUDGET"] = bodyBudget.map(String.init)
        values["FUNC_MAX_HEADERS"] = maxHeaders.map(String.init)
        values["FUNC_MAX_HEADER_BYTES"] = maxHeaderBytes.map(String.init)
        values["FUNC_MAX_PIPELINED"] = maxPipelined.map(String.init)
        values["FUNC_SEND_BUFFER"] = sendBuffer.map(String.init)
        values["KAFKA_BROKERS"] = kafkaBrokers
        values["KAFKA_TOPICS"] = kafkaTopics
        values["KAFKA_GROUP"] = kafkaGroup
        values["KAFKA_DLQ_TOPIC"] = kafkaDlqTopic
        values["KAFKA_REPLY_TOPICS"] = kafkaReplyTopics
        values["KAFKA_SEND_TIMEOUT"] = kafkaSendTimeout
        for property in kafkaConf {
            guard let equals = property.firstIndex(of: "=") else { continue }
            let name = String(property[..<equals].map { $0 == "." ? "_" : $0 })
            values["KAFKA_CONF_\(name)"] = String(property[property.index(after: equals)...])
        }
        return values
    }
}

/// Splits a handler file path into the code directory, module name and language. A file in an
/// embedded language with `handler` named is that language's module; a file with no extension
/// funcd embeds, an executable one given no handler, or any file under `--runtime exec` is a
/// program for the exec runtime (its whole name is the module).
func moduleOverrides(file: String, handler: String?, runtime: String?) throws -> [String: String] {
    let slash = file.lastIndex(of: "/")
    let directory = slash.map { $0 == file.startIndex ? "/" : String(file[..<$0]) } ?? "."
    let name = slash.map { String(file[file.index(after: $0)...]) } ?? file
    let dot = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : $0 }
    let language = dot.flatMap { Language(fileExtension: String(name[name.index(after: $0)...])) }
    let forcedExec = runtime.flatMap { Language(runtime: $0) } == .exec
    if let language, let dot, !forcedExec {
        if handler != nil {
            return [
                "KUBELESS_INSTALL_VOLUME": directory, "MOD_NAME": String(name[..<dot]), "FUNCD_LANGUAGE": language.rawValue,
                "FUNCD_MODULE_EXTENSION": String(name[name.index(after: dot)...]),
            ]
        }
        guard access(file, X_OK) == 0 else {
            throw FuncdError(
                .configuration,
                "\(file): --handler names the \(language.rawValue) function to call (or make the file executable to run it as a program)")
        }
    }
    return ["KUBELESS_INSTALL_VOLUME": directory, "MOD_NAME": name, "FUNCD_LANGUAGE": Language.exec.rawValue]
}
