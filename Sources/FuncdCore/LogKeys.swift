/// The metadata keys funcd's log messages use. Messages are constant; data goes here.
public enum LogKeys {
    public static let method = "funcd.method"
    public static let target = "funcd.target"
    public static let status = "funcd.status"
    public static let error = "funcd.error"
    public static let file = "funcd.file"
    public static let handler = "funcd.handler"
    public static let timeout = "funcd.timeout"
    public static let address = "funcd.address"
    public static let elapsed = "funcd.elapsed_ms"
    /// The call's trace and span (W3C Trace Context), under the names OpenTelemetry's log data
    /// model gives them, so that a call's lines can be found from its trace.
    public static let traceID = "trace_id"
    public static let spanID = "span_id"
}
