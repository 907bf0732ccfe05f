import Foundation
import Testing

/// `GET /metrics`: the kubeless python runtime's Prometheus metrics (calls, failures, a duration
/// histogram, each labelled by HTTP method), in a text format that Prometheus' own `promtool`
/// accepts.
@Suite(.sharesMachine)
struct MetricsTests {
    @Test("/metrics counts calls and failures per method and has a duration histogram")
    func metricsAfterCalls() throws {
        try Funcd.withServer { server in
            for _ in 0..<3 {
                let response = try server.get("/fast")
                #expect(response.status == 200, "GET /fast → \(response)\n\(server.diagnostics)")
            }
            let post = try server.request("POST", "/fast")
            #expect(post.status == 200, "POST /fast → \(post)\n\(server.diagnostics)")
            let failure = try server.get("/raise")
            #expect(failure.status == 500, "GET /raise → \(failure)\n\(server.diagnostics)")

            let metrics = try server.get("/metrics")
            #expect(metrics.status == 200, "GET /metrics → \(metrics)\n\(server.diagnostics)")
            let text = metrics.text
            let samples = PrometheusSample.parse(text)

            func total(_ name: String, method: String) -> Double {
                samples.filter { $0.name == name && $0.labels["method"] == method }.reduce(0) { $0 + $1.value }
            }
            #expect(total("function_calls_total", method: "GET") >= 4, "4 GET calls (3 fast, 1 failing):\n\(text)")
            #expect(total("function_calls_total", method: "POST") >= 1, "1 POST call:\n\(text)")
            #expect(total("function_failures_total", method: "GET") == 1, "exactly 1 failed GET call:\n\(text)")
            #expect(total("function_failures_total", method: "POST") == 0, "no failed POST call:\n\(text)")

            #expect(text.contains("# TYPE function_duration_seconds histogram"), "a histogram TYPE line:\n\(text)")
            #expect(total("function_duration_seconds_count", method: "GET") >= 4, "4 GET durations:\n\(text)")
            let sums = samples.filter { $0.name == "function_duration_seconds_sum" && $0.labels["method"] == "GET" }
            #expect(!sums.isEmpty, "function_duration_seconds_sum{method=\"GET\"}:\n\(text)")
            let buckets = samples.filter { $0.name == "function_duration_seconds_bucket" && $0.labels["method"] == "GET" }
            let infinite = buckets.first { $0.labels["le"] == "+Inf" }
            #expect(buckets.count >= 2, "function_duration_seconds_bucket{method=\"GET\",le=...}:\n\(text)")
            #expect((infinite?.value ?? 0) >= 4, "the +Inf bucket counts every GET call:\n\(text)")
        }
    }

    @Test("/metrics passes promtool check metrics")
    func promtoolAcceptsTheFormat() throws {
        guard let promtool = Self.findExecutable("promtool") else {
            Issue.record(
                "promtool is not installed, so /metrics cannot be validated: install it (Debian: apt-get install prometheus)")
            return
        }
        try Funcd.withServer { server in
            for path in ["/fast", "/fast", "/raise"] {
                _ = try server.get(path)
            }
            _ = try server.request("POST", "/fast")
            let metrics = try server.get("/metrics")
            #expect(metrics.status == 200, "GET /metrics → \(metrics)\n\(server.diagnostics)")

            let check = try FuncdProcess(
                executableURL: promtool, arguments: ["check", "metrics"], standardInput: Data(metrics.body))
            defer { check.stop() }
            let outcome = try check.finish(timeout: 60)
            // promtool exits 0 when the text parses and lints clean, 3 when it parses but has lint
            // findings (missing HELP, naming conventions), which are acceptable here, and 1 when it
            // cannot parse the text ("error while linting").
            let parsed = outcome.exitCode == 0
                || (outcome.exitCode == 3 && !outcome.stderr.contains("error while linting"))
            #expect(parsed, "promtool check metrics rejected /metrics: \(outcome)\n/metrics was:\n\(metrics.text)")
        }
    }

    /// The first executable named `name` on `PATH` (or in the usual system folders).
    static func findExecutable(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        return folders
            .map { URL(fileURLWithPath: $0).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }
}

/// One sample line of the Prometheus text format: `name{label="value",...} value [timestamp]`.
struct PrometheusSample {
    var name: String
    var labels: [String: String]
    var value: Double

    /// Every sample in `text`; comment lines and lines that do not parse are skipped (the format
    /// itself is checked by promtool).
    static func parse(_ text: String) -> [PrometheusSample] {
        let line = #/([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+([^ \t]+)(?:[ \t]+[^ \t]+)?/#
        let label = #/([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/#
        var samples: [PrometheusSample] = []
        for raw in text.split(separator: "\n") {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let match = trimmed.wholeMatch(of: line) else { continue }
            guard let value = Double(match.output.3) ?? Self.special(String(match.output.3)) else { continue }
            var labels: [String: String] = [:]
            if let labelText = match.output.2 {
                for pair in labelText.matches(of: label) {
                    labels[String(pair.output.1)] = String(pair.output.2)
                }
            }
            samples.append(PrometheusSample(name: String(match.output.1), labels: labels, value: value))
        }
        return samples
    }

    private static func special(_ text: String) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return nil
        }
    }
}
