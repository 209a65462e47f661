// One host-side user of a domain's private image at a time.
//
// The host mounts a private image for a moment outside its domain's run (a
// disposable's copy of its template's private, a revert, a resize, the
// revision rotation at stop). Without a lock, concurrent disposables of one
// template raced: each saw the image unmounted, each mounted it (two loop
// devices, two ext4 instances on one file: the template's data at risk;
// the loser failed with EBUSY or EIO), and the first to finish unmounted it
// under the others' copies, or under the template itself starting in the
// meantime. Any domain allowed `@dispvm` could trigger it with a few
// concurrent calls, failing other domains' disposables too.
//
// The lock is per domain name (a long copy for one domain never waits on
// another's) and held from "is it mounted?" to the unmount. Entries go when
// their last holder leaves, so the table stays as small as the work in flight.
#if canImport(Glibc)
import Glibc
#endif

enum PrivateVolumeLock {
    private final class Entry {
        var mutex = pthread_mutex_t()
        var holders = 0
        init() { pthread_mutex_init(&mutex, nil) }
        deinit { pthread_mutex_destroy(&mutex) }
    }

    nonisolated(unsafe) private static var table: [String: Entry] = [:]
    nonisolated(unsafe) private static var tableMutex: pthread_mutex_t = {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }()

    /// Runs `body` holding the lock of `key` (a private image's path). Not
    /// re-entrant: callers take it only around the leaf mount/unmount work.
    static func with<T>(_ key: String, _ body: () throws(DomainError) -> T) throws(DomainError) -> T {
        pthread_mutex_lock(&tableMutex)
        let entry = table[key] ?? Entry()
        table[key] = entry
        entry.holders += 1
        pthread_mutex_unlock(&tableMutex)

        pthread_mutex_lock(&entry.mutex)
        defer {
            pthread_mutex_unlock(&entry.mutex)
            pthread_mutex_lock(&tableMutex)
            entry.holders -= 1
            if entry.holders == 0 { table[key] = nil }
            pthread_mutex_unlock(&tableMutex)
        }
        return try body()
    }
}
