import FuncdCore
import Testing

@testable import FuncdKafka

/// The kubeless kafka-trigger's variables, as FuncdCore reads them, turned into librdkafka's
/// property names (no broker needed: the values are checked before any handle is made).
@Suite("Kafka settings to librdkafka properties")
struct KafkaPropertiesTests {
    private func properties(_ extra: [String: String] = [:]) throws -> [String: String] {
        let environment = ["KAFKA_BROKERS": "b1:9092,b2:9092", "KAFKA_TOPICS": "orders"].merging(extra) { _, new in new }
        let settings = try #require(try KafkaConfiguration(environment: environment, functionName: "handler"))
        var table: [String: String] = [:]
        // Later ones win, as rd_kafka_conf_set applies them.
        for (name, value) in settings.librdkafkaProperties { table[name] = value }
        return table
    }

    @Test("the defaults: at-least-once offsets committed every second, from the earliest, group named after the function")
    func defaults() throws {
        let table = try properties()
        #expect(table["bootstrap.servers"] == "b1:9092,b2:9092")
        #expect(table["group.id"] == "handler")
        #expect(table["enable.auto.offset.store"] == "false")
        #expect(table["enable.auto.commit"] == "true")
        #expect(table["auto.commit.interval.ms"] == "1000")
        #expect(table["auto.offset.reset"] == "earliest")
        #expect(table["security.protocol"] == nil)
        #expect(table["sasl.password"] == nil)
    }

    @Test("SASL with and without TLS, TLS alone, a CA bundle")
    func security() throws {
        let sasl = try properties([
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_USERNAME": "fn", "KAFKA_PASSWORD": " secret with spaces ",
        ])
        #expect(sasl["security.protocol"] == "sasl_plaintext")
        #expect(sasl["sasl.mechanisms"] == "SCRAM-SHA-256")
        #expect(sasl["sasl.username"] == "fn")
        #expect(sasl["sasl.password"] == " secret with spaces ")  // a password is taken as it is
        let saslTLS = try properties(["KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_TLS": "yes", "KAFKA_CA_FILE": "/ca.pem"])
        #expect(saslTLS["security.protocol"] == "sasl_ssl")
        #expect(saslTLS["ssl.ca.location"] == "/ca.pem")
        #expect(try properties(["KAFKA_TLS": "on"])["security.protocol"] == "ssl")
        #expect(try properties(["KAFKA_TLS": "no"])["security.protocol"] == nil)
    }

    @Test("KAFKA_CONF_* are librdkafka's own names with dots, applied last so that they win")
    func passThrough() throws {
        let table = try properties([
            "KAFKA_OFFSET_RESET": "Latest", "KAFKA_CONF_auto_offset_reset": "earliest",
            "KAFKA_CONF_fetch_max_bytes": "1048576", "KAFKA_CONF_": "ignored",
        ])
        #expect(table["auto.offset.reset"] == "earliest")
        #expect(table["fetch.max.bytes"] == "1048576")
        #expect(table[""] == nil)
        #expect(try properties(["KAFKA_OFFSET_RESET": "Latest"])["auto.offset.reset"] == "latest")
    }

    @Test("funcd's optional default may be passed over by an older librdkafka, unless the user asked for it")
    func optionalDefaults() throws {
        let environment = ["KAFKA_BROKERS": "b:9092", "KAFKA_TOPICS": "t"]
        let plain = try #require(try KafkaConfiguration(environment: environment, functionName: "f"))
        #expect(plain.mayPassOver("fetch.queue.backoff.ms"))
        #expect(!plain.mayPassOver("group.id"))
        let asked = try #require(
            try KafkaConfiguration(
                environment: environment.merging(["KAFKA_CONF_fetch_queue_backoff_ms": "50"]) { _, new in new },
                functionName: "f"))
        #expect(!asked.mayPassOver("fetch.queue.backoff.ms"))
    }

    @Test("bad values are refused with the variable named")
    func refusals() {
        #expect(throws: FuncdError.self) { try properties(["KAFKA_OFFSET_RESET": "middle"]) }
        #expect(throws: FuncdError.self) { try properties(["KAFKA_MAX_RETRIES": "-1"]) }
        #expect(throws: FuncdError.self) { try properties(["KAFKA_SEND_TIMEOUT": "0.5"]) }
        #expect(throws: FuncdError.self) {
            try KafkaConfiguration(environment: ["KAFKA_BROKERS": "b:9092"], functionName: "f")
        }
    }
}
