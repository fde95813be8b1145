/// Encodes the getTaskResult request body `{"clientKey":"…","taskId":"…"}`.
/// The taskId is always sent as a JSON string (providers with integer ids accept it).
public enum GetTaskResultRequest {
    public static func body(taskId: String, clientKey: ClientKey) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(40 + taskId.utf8.count + clientKey.secret.utf8.count)
        out.append(contentsOf: #"{"clientKey":"#.utf8)
        JSONEscaping.appendString(clientKey.secret, to: &out)
        out.append(contentsOf: #","taskId":"#.utf8)
        JSONEscaping.appendString(taskId, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
