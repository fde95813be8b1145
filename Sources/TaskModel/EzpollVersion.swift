/// The ezpoll version, used in the User-Agent (`ezpoll/<version>`).
public enum EzpollVersion {
    public static let string = "0.1.0"
    public static var userAgent: String { "ezpoll/\(string)" }
}
