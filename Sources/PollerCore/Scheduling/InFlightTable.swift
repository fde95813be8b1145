/// A slab of in-flight task records addressed by `TaskHandle`.
///
/// Slots are reused through a free list; each reuse bumps the slot's generation,
/// so stale handles (a late HTTP answer for a task dropped on revoke) look up
/// nothing. Storage is two flat arrays: no per-task class allocation besides
/// whatever `Element` itself holds.
public struct InFlightTable<Element> {
    var elements: [Element?] = []
    var generations: [UInt32] = []
    var freeSlots: [UInt32] = []
    public private(set) var count = 0

    public init() {}

    public mutating func insert(_ element: Element) -> TaskHandle {
        count += 1
        if let index = freeSlots.popLast() {
            elements[Int(index)] = element
            return TaskHandle(index: index, generation: generations[Int(index)])
        }
        precondition(elements.count < Int(UInt32.max), "InFlightTable: too many slots")
        elements.append(element)
        generations.append(0)
        return TaskHandle(index: UInt32(elements.count - 1), generation: 0)
    }

    @discardableResult
    public mutating func remove(_ handle: TaskHandle) -> Element? {
        guard contains(handle) else { return nil }
        let i = Int(handle.index)
        let element = elements[i]
        elements[i] = nil
        generations[i] &+= 1
        freeSlots.append(handle.index)
        count -= 1
        return element
    }

    public func contains(_ handle: TaskHandle) -> Bool {
        let i = Int(handle.index)
        return i < elements.count && generations[i] == handle.generation && elements[i] != nil
    }

    /// nil for a stale handle; setting through a stale handle does nothing.
    public subscript(handle: TaskHandle) -> Element? {
        get { contains(handle) ? elements[Int(handle.index)] : nil }
        set {
            guard contains(handle), let newValue else { return }
            elements[Int(handle.index)] = newValue
        }
    }

    /// Mutates the element in place (no copy of its storage); false for a stale handle.
    @discardableResult
    public mutating func update(_ handle: TaskHandle, _ body: (inout Element) -> Void) -> Bool {
        guard contains(handle) else { return false }
        body(&elements[Int(handle.index)]!)
        return true
    }

    /// Every live handle, in slot order (for revocation and shutdown sweeps).
    public var handles: [TaskHandle] {
        var result: [TaskHandle] = []
        result.reserveCapacity(count)
        for i in elements.indices where elements[i] != nil {
            result.append(TaskHandle(index: UInt32(i), generation: generations[i]))
        }
        return result
    }
}

extension InFlightTable: Sendable where Element: Sendable {}
