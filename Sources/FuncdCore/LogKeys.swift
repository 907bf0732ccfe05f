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
}
