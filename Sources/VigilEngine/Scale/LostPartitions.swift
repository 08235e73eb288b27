import Synchronization
import VigilKafka

/// Source partitions this instance lost (its session timed out, e.g. behind a slow broker) and
/// where it stood in each. Its windows and models still hold everything read before the loss,
/// so:
/// - a partition that comes back with no newer state stored resumes where the instance stood,
///   with its own windows, rather than re-reading from an older record into models that already
///   learned those records;
/// - no checkpoint is cut between the loss and the next assignment: its models would be ahead of
///   every position it could name.
final class LostPartitions: Sendable {
    private struct State {
        /// The next offset to read of each lost partition, as of the loss.
        var positions: [TopicPartition: Int64] = [:]
        /// A loss not yet followed by an assignment.
        var awaitingAssignment = false
    }
    private let state = Mutex(State())

    /// Partitions lost; `next` is the next offset to read of each partition read so far.
    func lost(_ partitions: [TopicPartition], next: [TopicPartition: Int64]) {
        state.withLock { s in
            for tp in partitions { s.positions[tp] = next[tp] }
            s.awaitingAssignment = true
        }
    }

    /// An assignment came (the group settled): returns the lost partitions in it, with where
    /// this instance stood in each, and forgets them.
    func assigned(_ partitions: Set<TopicPartition>) -> [TopicPartition: Int64] {
        state.withLock { s in
            s.awaitingAssignment = false
            var back: [TopicPartition: Int64] = [:]
            for tp in partitions {
                if let offset = s.positions.removeValue(forKey: tp) { back[tp] = offset }
            }
            return back
        }
    }

    /// Whether a loss has not yet been followed by an assignment: checkpoints wait meanwhile.
    var awaitingAssignment: Bool { state.withLock { $0.awaitingAssignment } }
}
