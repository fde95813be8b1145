import CRdKafka
import Foundation

/// Helpers to move between `rd_kafka_topic_partition_list_t` and Swift values.
enum RDKafkaTopicPartitionList {
    /// Calls `body` with a new list holding `entries`; the list is destroyed afterwards.
    static func with<R>(_ entries: [(TopicPartition, Int64)],
                        _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> R) rethrows -> R {
        let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (tp, offset) in entries {
            let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
            element.pointee.offset = offset
        }
        return try body(list)
    }

    /// Like `with(_:_:)`, with each entry's commit metadata copied into the list
    /// (librdkafka frees it with the list).
    static func with<R>(offsets: [TopicPartitionOffset],
                        _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> R) rethrows -> R {
        let list = rd_kafka_topic_partition_list_new(Int32(max(offsets.count, 1)))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for entry in offsets {
            let element = rd_kafka_topic_partition_list_add(list, entry.topicPartition.topic, entry.topicPartition.partition)!
            element.pointee.offset = entry.offset
            if let metadata = entry.metadata, !metadata.isEmpty {
                let bytes = Array(metadata.utf8)
                let copy = malloc(bytes.count)!
                bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                element.pointee.metadata = copy
                element.pointee.metadata_size = bytes.count
            }
        }
        return try body(list)
    }

    /// Every element's commit metadata as text (nil when empty or absent).
    static func metadata(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition: String] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return [:] }
        var result: [TopicPartition: String] = [:]
        for i in 0..<count {
            let e = elems[i]
            guard let pointer = e.metadata, e.metadata_size > 0 else { continue }
            let bytes = UnsafeRawBufferPointer(start: pointer, count: e.metadata_size)
            result[TopicPartition(String(cString: e.topic), e.partition)] = String(decoding: bytes, as: UTF8.self)
        }
        return result
    }

    static func partitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        entries(list).map(\.topicPartition)
    }

    /// Every element with its offset and per-partition error.
    static func entries(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>)
        -> [(topicPartition: TopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return [] }
        return (0..<count).map { i in
            let e = elems[i]
            return (TopicPartition(String(cString: e.topic), e.partition), e.offset, e.err)
        }
    }
}
