/// The variables the supervisor adds to each worker's environment, named once: the supervisor
/// sets them, and a worker reads them from the snapshot it takes at launch and then takes every
/// one of them out of its environment, so that a program its handler starts (a nested funcd)
/// does not take them for its own.
public enum WorkerEnvironment {
    /// The listening socket every worker accepts from (`SupervisorLink`).
    public static let listenDescriptor = "FUNCD_LISTEN_FD"
    /// The worker's end of its socket pair with the supervisor (`SupervisorLink`).
    public static let controlDescriptor = "FUNCD_CONTROL_FD"
    /// The worker's slot, for `ps` and `/proc/<pid>/environ`.
    public static let slot = "FUNCD_WORKER"
    /// What the command line added, encoded (`ConfigurationInputs`).
    public static let configuration = "FUNCD_CONFIGURATION"
    /// The Kafka in-flight table's memfd (`KafkaInFlightTable`).
    public static let kafkaInFlightDescriptor = "FUNCD_KAFKA_INFLIGHT_FD"
    /// The Kafka messages earlier workers died running (`KafkaWorkerDeaths`).
    public static let kafkaDeaths = "FUNCD_KAFKA_DEATHS"

    public static let all = [
        listenDescriptor, controlDescriptor, slot, configuration, kafkaInFlightDescriptor, kafkaDeaths,
    ]
}
