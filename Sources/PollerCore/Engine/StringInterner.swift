/// Shares one string buffer among the many tasks that carry the same small set
/// of values (taskType, provider, topic), saving a heap allocation per task.
/// Bounded: past `capacity` distinct values new ones are returned as they are.
struct StringInterner: Sendable {
    private var table: [String: String] = [:]
    let capacity: Int

    init(capacity: Int = 1024) { self.capacity = capacity }

    mutating func intern(_ value: String) -> String {
        if let shared = table[value] { return shared }
        guard table.count < capacity else { return value }
        table[value] = value
        return value
    }

    mutating func intern(_ value: String?) -> String? { value.map { intern($0) } }
}
