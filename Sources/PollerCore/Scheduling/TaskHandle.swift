/// A compact reference to an in-flight task: a slot index plus the slot's
/// generation, so a handle to a finished task never aliases the slot's next
/// occupant. 8 bytes, no allocation.
public struct TaskHandle: Hashable, Sendable, CustomStringConvertible {
    public let index: UInt32
    public let generation: UInt32

    public init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }

    public var description: String { "task#\(index).\(generation)" }
}
