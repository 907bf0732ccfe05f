import ArgumentParser
import FuncdCLI
import FuncdCore
import Foundation
import Testing

/// The hand-over from the supervisor to its workers: a worker must build the very configuration
/// the supervisor's command line gave, without parsing it.
@Suite struct ConfigurationInputsTests {
    @Test(
        "encoded inputs decode to the same inputs, whatever bytes the values hold",
        arguments: [
            ConfigurationInputs(overrides: [:]),
            ConfigurationInputs(overrides: ["FUNC_HANDLER": ""], ignored: ["FUNC_RUNTIME"]),
            ConfigurationInputs(
                overrides: [
                    "KAFKA_CONF_sasl_password": "a:b+c=d 12:ef", "MOD_NAME": "héllo wörld", "FUNC_HOST": "::1",
                    "KUBELESS_INSTALL_VOLUME": "/tmp/a\nb\tc", "FUNC_TIMEOUT": "0.5",
                ],
                ignored: ["FUNC_RUNTIME", "X"]),
        ])
    func roundTrip(inputs: ConfigurationInputs) {
        let decoded = ConfigurationInputs(encoded: inputs.encoded)
        #expect(decoded?.overrides == inputs.overrides, "\(inputs.encoded)")
        #expect(decoded.map { Set($0.ignored) } == Set(inputs.ignored), "\(inputs.encoded)")
    }

    @Test(
        "anything else is refused, not half read",
        arguments: ["x", "+", "+3:ab", "+2:ab", "+2:ab3:cd", "=a:b", "=-1:", "+1:a99999999999999999999:b", "*1:a"])
    func refusesGarbage(text: String) {
        #expect(ConfigurationInputs(encoded: text) == nil, "\(text)")
    }

    @Test(
        "a worker's configuration from the hand-over equals the one parsing the command line gives",
        arguments: [
            ["run", "/code/hello.py", "--handler", "hello", "--timeout", "2.5", "--port", "0"],
            ["run", "/code/app.rb", "--handler", "h", "--access-log", "json", "--kafka-conf", "fetch.wait.max.ms=5"],
            ["serve", "--handler", "other", "--workers", "3", "--max-headers", "20"],
            ["serve"],
        ])
    func sameConfiguration(arguments: [String]) throws {
        // A pod's variables: `run` must still ignore its FUNC_RUNTIME in the worker.
        let environment = [
            "MOD_NAME": "app", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": "nodejs18", "FUNC_TIMEOUT": "9",
            "KUBELESS_INSTALL_VOLUME": "/kubeless", "FUNC_PORT": "9000",
        ]
        let (parsed, _) = try FuncdCommand.resolve(arguments: arguments, environment: environment)
        let (inputs, _) = try FuncdCommand.inputs(of: FuncdCommand.parseAsRoot(arguments))
        let handedOver = try #require(ConfigurationInputs(encoded: inputs.encoded))
        var workerEnvironment = environment
        workerEnvironment[ConfigurationInputs.variable] = inputs.encoded
        #expect(try handedOver.configuration(environment: workerEnvironment) == parsed)
    }

    @Test("plain `funcd serve`, a pod's command, skips the parser and configures as the parser would")
    func plainServe() throws {
        let environment = ["MOD_NAME": "app", "FUNC_HANDLER": "handler", "FUNC_RUNTIME": "ruby3.1", "FUNC_TIMEOUT": "9"]
        let (inputs, _) = try #require(FuncdCommand.plainServe(["serve"]))
        let (parsed, _) = try FuncdCommand.resolve(FuncdCommand.parseAsRoot(["serve"]), environment: environment)
        #expect(try inputs.configuration(environment: environment) == parsed)
        for arguments in [["serve", "--help"], ["serve", "--port", "1"], ["run", "app.rb"], [], ["serve", "serve"]] {
            #expect(FuncdCommand.plainServe(arguments) == nil, "\(arguments)")
        }
    }
}
