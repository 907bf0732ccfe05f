import Testing

@testable import FuncdCore

@Suite("Configuration from the kubeless environment and flags")
struct ConfigurationTests {
    let base = ["MOD_NAME": "hello", "FUNC_HANDLER": "foo"]

    @Test func defaultsMatchKubeless() throws {
        let configuration = try Configuration(environment: base, fileExists: { _ in false })
        #expect(configuration.codeDirectory == "/kubeless")
        #expect(configuration.modulePath == "/kubeless/hello.py")
        #expect(configuration.timeoutSeconds == 180)
        #expect(configuration.port == 8080)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.bodyLimitBytes == 100 * 1024 * 1024)
        #expect(configuration.shutdownTimeoutSeconds == 10)
        #expect(configuration.concurrency == 16)
        #expect(configuration.accessLog == .combined)
        #expect(configuration.language == .python)
    }

    @Test func readsEveryVariable() throws {
        var environment = base
        environment["FUNC_TIMEOUT"] = "2.5"
        environment["FUNC_PORT"] = "9000"
        environment["FUNC_RUNTIME"] = "python3.11"
        environment["FUNC_MEMORY_LIMIT"] = "128Mi"
        environment["MOD_ROOT_PATH"] = "/code"
        environment["REQ_MB_LIMIT"] = "2"
        environment["SHUTDOWN_TIMEOUT"] = "3"
        environment["FUNC_CONCURRENCY"] = "4"
        environment["FUNC_ACCESS_LOG"] = "JSON"
        let configuration = try Configuration(environment: environment)
        #expect(configuration.timeoutSeconds == 2.5)
        #expect(configuration.port == 9000)
        #expect(configuration.runtime == "python3.11")
        #expect(configuration.memoryLimit == "128Mi")
        #expect(configuration.codeDirectory == "/code")
        #expect(configuration.bodyLimitBytes == 2 * 1024 * 1024)
        #expect(configuration.shutdownTimeoutSeconds == 3)
        #expect(configuration.concurrency == 4)
        #expect(configuration.accessLog == .json)
    }

    @Test func installVolumeWinsOverModRootAndMemfileOverMegabytes() throws {
        var environment = base
        environment["KUBELESS_INSTALL_VOLUME"] = "/a"
        environment["MOD_ROOT_PATH"] = "/b"
        environment["FUNC_MEMFILE_MAX"] = "1024"
        environment["REQ_MB_LIMIT"] = "5"
        let configuration = try Configuration(environment: environment)
        #expect(configuration.codeDirectory == "/a")
        #expect(configuration.bodyLimitBytes == 1024)
    }

    @Test func flagsWinOverEnvironment() throws {
        var environment = base
        environment["FUNC_PORT"] = "9000"
        let configuration = try Configuration(environment: environment, overrides: ["FUNC_PORT": "0"])
        #expect(configuration.port == 0)
    }

    @Test func languageFromRuntimeOrFromTheFileThatExists() throws {
        var environment = base
        environment["FUNC_RUNTIME"] = "nodejs18"
        #expect(try Configuration(environment: environment).language == .node)
        environment["FUNC_RUNTIME"] = "ruby3.1"
        #expect(try Configuration(environment: environment).language == .ruby)
        let probed = try Configuration(environment: base, fileExists: { $0 == "/kubeless/hello.rb" })
        #expect(probed.language == .ruby)
        #expect(probed.modulePath == "/kubeless/hello.rb")
    }

    @Test("a Node module may be app.js, app.mjs or app.cjs: .js first; the file named on the command line wins")
    func nodeModuleExtensions() throws {
        var environment = base
        environment["FUNC_RUNTIME"] = "nodejs18"
        #expect(try Configuration(environment: environment, fileExists: { _ in false }).modulePath == "/kubeless/hello.js")
        let esm = try Configuration(environment: environment, fileExists: { $0 == "/kubeless/hello.mjs" })
        #expect(esm.modulePath == "/kubeless/hello.mjs")
        let both = try Configuration(environment: environment, fileExists: { $0.hasPrefix("/kubeless/hello.") })
        #expect(both.modulePath == "/kubeless/hello.js")
        let named = try Configuration(
            environment: base, overrides: ["FUNCD_LANGUAGE": "node", "FUNCD_MODULE_EXTENSION": "mjs"],
            fileExists: { $0.hasPrefix("/kubeless/hello.") })
        #expect(named.modulePath == "/kubeless/hello.mjs")
        let probed = try Configuration(environment: base, fileExists: { $0 == "/kubeless/hello.mjs" })
        #expect(probed.language == .node && probed.modulePath == "/kubeless/hello.mjs")
        #expect(Language(fileExtension: "mjs") == .node && Language(fileExtension: "cjs") == .node)
    }

    @Test(arguments: [
        (["FUNC_HANDLER": "foo"], "MOD_NAME"),
        (["MOD_NAME": "hello"], "FUNC_HANDLER"),
        (["MOD_NAME": "hello", "FUNC_HANDLER": "foo", "FUNC_TIMEOUT": "soon"], "FUNC_TIMEOUT"),
        (["MOD_NAME": "hello", "FUNC_HANDLER": "foo", "FUNC_TIMEOUT": "-1"], "FUNC_TIMEOUT"),
        (["MOD_NAME": "hello", "FUNC_HANDLER": "foo", "FUNC_PORT": "70000"], "FUNC_PORT"),
        (["MOD_NAME": "hello", "FUNC_HANDLER": "foo", "FUNC_RUNTIME": "go1.x"], "FUNC_RUNTIME"),
        (["MOD_NAME": "hello", "FUNC_HANDLER": "foo", "FUNC_ACCESS_LOG": "loud"], "FUNC_ACCESS_LOG"),
        (["MOD_NAME": "hello", "FUNC_HANDLER": "foo", "FUNC_CONCURRENCY": "0"], "FUNC_CONCURRENCY"),
    ])
    func badConfigurationNamesTheVariable(environment: [String: String], variable: String) {
        #expect {
            try Configuration(environment: environment)
        } throws: { error in
            guard let error = error as? FuncdError else { return false }
            return error.code == .configuration && error.message.contains(variable)
        }
    }

    @Test func emptyVariablesCountAsUnset() throws {
        var environment = base
        environment["FUNC_TIMEOUT"] = ""
        #expect(try Configuration(environment: environment).timeoutSeconds == 180)
    }
}

/// Where a message's `reply-to` may send the handler's result.
@Suite struct KafkaReplyTopicTests {
    private func settings(_ extra: [String: String] = [:]) throws -> KafkaConfiguration {
        let environment = ["KAFKA_BROKERS": "b:9092", "KAFKA_TOPICS": "orders,refunds", "KAFKA_DLQ_TOPIC": "dead"]
            .merging(extra) { _, new in new }
        return try #require(try KafkaConfiguration(environment: environment, functionName: "f"))
    }

    @Test("without KAFKA_REPLY_TOPICS: any topic but the consumed ones, the DLQ and internal ones")
    func defaults() throws {
        let kafka = try settings()
        #expect(kafka.replyRefusal("answers") == nil)
        #expect(kafka.replyRefusal("orders") != nil)
        #expect(kafka.replyRefusal("refunds") != nil)
        #expect(kafka.replyRefusal("dead") != nil)
        #expect(kafka.replyRefusal("__consumer_offsets") != nil)
    }

    @Test("KAFKA_REPLY_TOPICS admits only what its names and globs match")
    func allowList() throws {
        let kafka = try settings(["KAFKA_REPLY_TOPICS": "replies-*, audit, r?"])
        #expect(kafka.replyRefusal("replies-eu") == nil)
        #expect(kafka.replyRefusal("replies-") == nil)
        #expect(kafka.replyRefusal("audit") == nil)
        #expect(kafka.replyRefusal("r1") == nil)
        #expect(kafka.replyRefusal("r12") != nil)
        #expect(kafka.replyRefusal("audit2") != nil)
        #expect(kafka.replyRefusal("answers") != nil)
    }

    @Test("globs: * any run, ? one character")
    func globs() {
        #expect(KafkaConfiguration.glob("*", matches: ""))
        #expect(KafkaConfiguration.glob("a*b*c", matches: "aXXbYYc"))
        #expect(!KafkaConfiguration.glob("a*b*c", matches: "aXXbYY"))
        #expect(KafkaConfiguration.glob("??", matches: "ab"))
        #expect(!KafkaConfiguration.glob("??", matches: "abc"))
    }
}
