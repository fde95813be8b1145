/// Encodes the getTaskResult request body `{"clientKey":"…","taskId":"…"}`.
/// The taskId is always sent as a JSON string (providers with integer ids accept it).
public enum GetTaskResultRequest {
    public static func body(taskId: String, clientKey: ClientKey) -> [UInt8] {
        var w = JSONWriter(capacity: 40 + taskId.utf8.count + clientKey.secret.utf8.count)
        w.string("clientKey", clientKey.secret)
        w.string("taskId", taskId)
        return w.finish()
    }
}

/// The body of a getBalance call.
public enum GetBalanceRequest {
    public static func body(clientKey: ClientKey) -> [UInt8] {
        var w = JSONWriter(capacity: 20 + clientKey.secret.utf8.count)
        w.string("clientKey", clientKey.secret)
        return w.finish()
    }
}
